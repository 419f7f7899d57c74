"""LLM access: model resolution, the offline model and the gateway every call goes through.

May import: ``cache`` and the foundations; never ``pipeline``, ``runs`` or above. It knows
what a call is, never what a service is.
"""

__all__: list[str] = []
