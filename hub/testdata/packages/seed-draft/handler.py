import json

import runpod


def handler(job):
    job_input = job["input"]
    with open("/dance_api.json") as f:
        prompt = json.load(f)
    prompt["106"]["inputs"]["image"] = job_input["image_url"]  # LoadImage
    prompt["368"]["inputs"]["positive_prompt"] = job_input["prompt"]
    return {"video": ""}


runpod.serverless.start({"handler": handler})
