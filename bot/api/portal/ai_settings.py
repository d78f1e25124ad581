"""AI settings over the REST API, beside `/deskbridge ai` in chat and `deskbridge ai` on the CLI: every setting
with its value, and the category model's status (trained when, on how many tickets, held-out accuracy); an
admin key changes one setting at a time, parsed and refused exactly as in chat and on the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bot.api.portal.deps import Admin, Reader
from core.ai.settings import OPTIONS

router = APIRouter()
Name = Annotated[str, Path(pattern="^(" + "|".join(sorted(OPTIONS)) + ")$",
                           description="One of: " + ", ".join(sorted(OPTIONS)))]


class AiModelOut(BaseModel):
    version: int
    trained_on: int = Field(description="Closed tickets the model learned from")
    trained_at: datetime
    metrics: dict[str, Any] = Field(description="Held-out accuracy and macro-F1, labels, cold start flag")


class AiSettingsOut(BaseModel):
    settings: dict[str, Any] = Field(description="Every AI setting with its value (stored or default)")
    help: dict[str, str] = Field(description="What each setting does")
    model: AiModelOut | None = Field(None, description="The newest category model; null before the first training")


class SettingIn(BaseModel):
    value: str = Field(max_length=2000, description='As typed in chat: "on"/"off", 0.8 or 80%, a comma list')


async def _out(caller: Reader, settings: dict[str, Any]) -> JSONResponse:
    status = await caller.container.ai.status(caller.principal.workspace_id)
    model = None if status is None else AiModelOut(version=status.version, trained_on=status.trained_on,
                                                   trained_at=status.created_at, metrics=status.metrics)
    out = AiSettingsOut(settings=settings, help={k: h for k, (_, _, h) in OPTIONS.items()}, model=model)
    return JSONResponse(out.model_dump(mode="json"))


@router.get("/ai/settings", response_model=AiSettingsOut, tags=["ai"], summary="AI settings and model status")
async def get_settings(caller: Reader) -> JSONResponse:
    return await _out(caller, await caller.container.ai.settings(caller.principal.workspace_id))


@router.put("/ai/settings/{name}", response_model=AiSettingsOut, tags=["ai"],
            summary="Change one AI setting (admin keys)")
async def put_setting(caller: Admin, name: Name, body: SettingIn) -> JSONResponse:
    return await _out(caller, await caller.container.ai.set_setting(caller.actor, name, body.value))
