"""Errors a user can cause. Views and consumers turn them into clear answers."""


class StudioError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(StudioError):
    status = 404
    code = "not_found"


class Forbidden(StudioError):
    status = 403
    code = "forbidden"


class Invalid(StudioError):
    status = 400
    code = "invalid"


class TooLarge(StudioError):
    status = 413
    code = "too_large"


class UnsupportedMedia(StudioError):
    status = 415
    code = "unsupported_media"


class Conflict(StudioError):
    status = 409
    code = "conflict"


class TooManyRequests(StudioError):
    status = 429
    code = "too_many_requests"
