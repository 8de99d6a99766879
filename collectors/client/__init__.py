"""The streaming client: OpenAI-compatible requests over aiohttp, timed event by event."""
