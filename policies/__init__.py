"""Policies (behaviour cloning, Diffusion Policy, ACT, VLA, RL) behind one contract.

The contract (``reset``, ``act``, ``predict_chunk``, ``compute_loss``, save/load as a folder
with ``config.json`` + ``model.safetensors``) lands with the policies themselves; until then
``robolearn rollout --policy scripted`` drives each task's scripted expert (:mod:`envs.experts`).
"""
