"""The Hugging Face Hub through huggingface_hub: pinning calls and errors, the cache layout and stamps, Xet."""
