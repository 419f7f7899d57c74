"""LLM access: model resolution, the offline model and the gateway every call goes through."""

__all__: list[str] = []
