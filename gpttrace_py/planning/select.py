"""Which planner answers: the LLM planner when a model endpoint is configured, else the offline one, whose
programs are remembered by request when asked to (service/remember.py)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the planners import the spec models: only when one is asked for
    from .base import Planner


def llm_configured() -> bool:
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return True
    from ..config import load_config  # read only when the environment does not say

    cfg = load_config()
    return bool(cfg.get("api_key") or cfg.get("base_url"))


def get_planner(offline: bool = False, model: str | None = None, fallback: bool = True) -> Planner:
    """``fallback``: whether the LLM planner may hand a request to the offline planner when the model fails."""
    if not offline and llm_configured():
        from .llm import LLMPlanner

        return LLMPlanner(model=model, fallback=fallback)
    from .offline import OfflinePlanner

    return OfflinePlanner()


def remembering_planner(offline: bool = False, model: str | None = None, fallback: bool = True) -> Planner:
    """The planner ``get_planner`` gives, made only when a request must be planned (a remembered request needs
    none), with the offline planner's programs remembered by request (service/remember.py; not with
    GPTTRACE_NO_CACHE)."""
    from ..service import remember as memory

    remembers = (offline or not llm_configured()) and memory.enabled()
    return memory.RememberingPlanner(lambda: get_planner(offline, model, fallback), remembers)
