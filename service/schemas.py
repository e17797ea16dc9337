"""Request and response bodies at the HTTP edge. The analysis result itself is `Prediction.to_dict()`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=8192, description="an http(s) URL of the video")
    labels: list[str] | None = Field(None, max_length=500, description="categories to choose from")
    head: str | None = Field(None, max_length=100, description="a fine-tuned head in the heads directory")


class JobRequest(AnalyzeRequest):
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    webhook_url: str | None = Field(None, max_length=8192, description="POSTed the job when it finishes")


class JobCreated(BaseModel):
    id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class JobList(BaseModel):
    jobs: list[dict[str, Any]]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 413, 415, 422, 429, 502, 503, 504)
}
