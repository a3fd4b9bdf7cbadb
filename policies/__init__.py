"""Policies (behaviour cloning, Diffusion Policy, ACT, RL agents) behind one contract.

See :mod:`robolearn.policies.base` for the contract and the folder format::

    from robolearn.policies import available_policies, load_policy, make_policy
"""

from robolearn.policies.base import (
    POLICIES,
    Policy,
    PolicyConfig,
    available_policies,
    check_policy_spec,
    load_policy,
    make_policy,
    policy_class,
    read_policy_config,
    register_policy,
)

__all__ = [
    "POLICIES",
    "Policy",
    "PolicyConfig",
    "available_policies",
    "check_policy_spec",
    "load_policy",
    "make_policy",
    "policy_class",
    "read_policy_config",
    "register_policy",
]
