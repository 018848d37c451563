# syntax=docker/dockerfile:1.7
#
# The comfypod worker image: ComfyUI on CUDA, driven by comfypod's Go worker
# (comfypod worker) instead of a Python handler. See docs/worker.md.
#
#   docker build --platform linux/amd64 -f docker/worker.Dockerfile -t you/comfypod-worker .
#
# Models are baked in by the downloader stage, whose layers never reach the
# final image. Pass a Hugging Face token as a build secret (preferred; it is
# never stored) or as the HF_TOKEN build argument (kept only in the
# downloader stage's cache, not in the image):
#
#   docker build --platform linux/amd64 -f docker/worker.Dockerfile \
#     --build-arg MODELS="checkpoints/sd_xl_base_1.0.safetensors=https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/sd_xl_base_1.0.safetensors" \
#     --secret id=hf_token,env=HF_TOKEN -t you/comfypod-worker:sdxl .

# Versions, pinned. Override with --build-arg.
ARG GO_VERSION=1.26.8
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
ARG COMFYUI_VERSION=0.3.64
ARG TORCH_VERSION=2.8.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
ARG DOWNLOADER_IMAGE=alpine:3.22

# --- build: the static comfypod binary -------------------------------------
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/comfypod ./cmd/comfypod

# --- models: downloaded here, copied into the final image -------------------
FROM --platform=linux/amd64 ${DOWNLOADER_IMAGE} AS models
# MODELS is a space-separated list of <folder>/<file>=<url>; the folder is a
# ComfyUI model folder (checkpoints, loras, vae, diffusion_models, …).
ARG MODELS=""
# A Hugging Face token for gated models; prefer --secret id=hf_token.
ARG HF_TOKEN
RUN apk add --no-cache curl ca-certificates && mkdir -p /models
RUN --mount=type=secret,id=hf_token,required=false <<'SH'
set -eu
token="${HF_TOKEN:-}"
if [ -s /run/secrets/hf_token ]; then token="$(cat /run/secrets/hf_token)"; fi
for spec in $MODELS; do
  dest="${spec%%=*}"
  url="${spec#*=}"
  case "$dest" in
    */*) ;;
    *) echo "MODELS entry '$dest' must be <folder>/<file>" >&2; exit 1 ;;
  esac
  case "$dest" in
    *..*|/*) echo "MODELS entry '$dest' must stay below models/" >&2; exit 1 ;;
  esac
  mkdir -p "/models/$(dirname "$dest")"
  echo "downloading $dest"
  case "$url" in
    https://huggingface.co/*)
      if [ -n "$token" ]; then
        curl -fL --retry 3 -H "Authorization: Bearer $token" -o "/models/$dest" "$url"
      else
        curl -fL --retry 3 -o "/models/$dest" "$url"
      fi ;;
    *) curl -fL --retry 3 -o "/models/$dest" "$url" ;;
  esac
done
SH

# --- comfyui: ComfyUI, PyTorch and custom nodes ----------------------------
FROM --platform=linux/amd64 ${CUDA_IMAGE} AS comfyui
ARG COMFYUI_VERSION
ARG TORCH_VERSION
ARG TORCH_INDEX_URL
# Custom nodes: a space-separated list of <git URL>@<commit or tag>.
ARG CUSTOM_NODES=""
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends \
      python3.12 python3.12-venv git ca-certificates curl ffmpeg \
      libgl1 libglib2.0-0 libgoogle-perftools4 \
    && rm -rf /var/lib/apt/lists/* \
    && python3.12 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN git clone --depth 1 --branch "v${COMFYUI_VERSION}" https://github.com/comfyanonymous/ComfyUI.git /comfyui \
    && pip install "torch==${TORCH_VERSION}" torchvision torchaudio --index-url "${TORCH_INDEX_URL}" \
    && pip install -r /comfyui/requirements.txt
RUN <<'SH'
set -eu
for spec in $CUSTOM_NODES; do
  repo="${spec%@*}"
  ref="${spec##*@}"
  name="$(basename "$repo" .git)"
  git clone "$repo" "/comfyui/custom_nodes/$name"
  git -C "/comfyui/custom_nodes/$name" checkout --quiet "$ref"
  if [ -f "/comfyui/custom_nodes/$name/requirements.txt" ]; then
    pip install -r "/comfyui/custom_nodes/$name/requirements.txt"
  fi
done
SH

# --- final: ComfyUI plus the worker ----------------------------------------
FROM comfyui AS final
COPY --from=build /out/comfypod /usr/local/bin/comfypod
COPY --from=models /models/ /comfyui/models/
COPY docker/extra_model_paths.yaml /comfyui/extra_model_paths.yaml
COPY docker/entrypoint.sh /entrypoint.sh
# A package (comfypod.json and its workflows) to serve by name; the default
# is an empty folder, and jobs then send their workflows.
ARG PACKAGE_DIR=docker/no-package
COPY ${PACKAGE_DIR} /package/
ENV COMFYPOD_COMFY_DIR=/comfyui \
    COMFYPOD_PID_FILE=/tmp/comfyui.pid \
    COMFY_PORT=8188
WORKDIR /
ENTRYPOINT ["/entrypoint.sh"]
