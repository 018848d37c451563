#!/usr/bin/env bash
# Starts ComfyUI in the background, records its process id, and replaces
# this shell with the comfypod worker, which waits for ComfyUI while that
# process lives and then takes jobs from RunPod. Arguments are passed on to
# comfypod worker.
set -euo pipefail

comfy_dir="${COMFYPOD_COMFY_DIR:-/comfyui}"
pid_file="${COMFYPOD_PID_FILE:-/tmp/comfyui.pid}"
port="${COMFY_PORT:-8188}"
listen="127.0.0.1"
log_level="${COMFY_LOG_LEVEL:-INFO}"

# SERVE_API_LOCALLY is for trying the image on a workstation: ComfyUI's own
# API is then reachable from outside the container too.
case "${SERVE_API_LOCALLY:-false}" in
  true|1|yes) listen="0.0.0.0" ;;
esac

# tcmalloc keeps ComfyUI's memory from fragmenting, as in worker-comfyui.
tcmalloc="$(ldconfig -p 2>/dev/null | grep -o 'libtcmalloc\.so\.[0-9]*' | head -n 1 || true)"
if [ -n "$tcmalloc" ]; then
  export LD_PRELOAD="$tcmalloc"
fi

rm -f "$pid_file"
# COMFY_EXTRA_ARGS holds more ComfyUI flags, split on spaces.
# shellcheck disable=SC2086
python -u "$comfy_dir/main.py" \
  --disable-auto-launch --disable-metadata --log-stdout --verbose "$log_level" \
  --listen "$listen" --port "$port" ${COMFY_EXTRA_ARGS:-} &
echo "$!" > "$pid_file"

args=(worker --comfy-url "http://127.0.0.1:$port" --comfy-dir "$comfy_dir" --pid-file "$pid_file")
if [ -f /package/comfypod.json ]; then
  args+=(--package /package)
fi
exec comfypod "${args[@]}" "$@"
