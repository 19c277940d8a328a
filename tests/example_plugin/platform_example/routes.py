"""Thin HTTP layer over the notes service, mounted under ``/api/example``."""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request, Response

from platform_core import PUBLIC, Caller, DbSession, get_context, requires_scopes
from platform_example import service
from platform_example.schemas import NoteCreate, NoteOut, NoteStats, NoteUpdate, Ping
from platform_example.settings import ExampleSettings

router = APIRouter()


def _settings(request: Request) -> ExampleSettings:
    return get_context(request).settings_for("example", ExampleSettings)


def _validate(request: Request) -> service.Validate:
    return cast(service.Validate, get_context(request).plugins.pm.hook.example_validate_note)


@router.get("/ping", response_model=Ping, openapi_extra=PUBLIC)
async def ping(request: Request) -> Ping:
    """Public: answers with the configured greeting, no credentials needed."""
    return Ping(message=_settings(request).greeting)


@router.get("/notes", response_model=list[NoteOut])
async def list_notes(session: DbSession, caller: Caller) -> list[NoteOut]:
    """The caller's notes, oldest first."""
    notes = await service.list_notes(session, caller.user_id)
    return [NoteOut.model_validate(n) for n in notes]


@router.post("/notes", response_model=NoteOut, status_code=201)
async def create_note(
    data: NoteCreate, request: Request, session: DbSession, caller: Caller
) -> NoteOut:
    """Create a note; 409 on a duplicate title or past the per-user limit."""
    note = await service.create_note(
        session,
        caller.user_id,
        data,
        max_notes=_settings(request).max_notes_per_user,
        validate=_validate(request),
        actor=caller.username,
    )
    return NoteOut.model_validate(note)


@router.get("/notes/{note_id}", response_model=NoteOut)
async def get_note(note_id: int, session: DbSession, caller: Caller) -> NoteOut:
    """One of the caller's notes."""
    return NoteOut.model_validate(await service.get_note(session, caller.user_id, note_id))


@router.patch("/notes/{note_id}", response_model=NoteOut)
async def update_note(
    note_id: int, data: NoteUpdate, request: Request, session: DbSession, caller: Caller
) -> NoteOut:
    """Change one of the caller's notes."""
    note = await service.update_note(
        session, caller.user_id, note_id, data, validate=_validate(request)
    )
    return NoteOut.model_validate(note)


@router.delete("/notes/{note_id}", status_code=204, response_class=Response)
async def delete_note(note_id: int, session: DbSession, caller: Caller) -> Response:
    """Delete one of the caller's notes."""
    await service.delete_note(session, caller.user_id, note_id)
    return Response(status_code=204)


@router.get("/stats", response_model=NoteStats, openapi_extra=requires_scopes("example:admin"))
async def stats(session: DbSession) -> NoteStats:
    """Counts across every user; needs ``example:admin``."""
    notes, owners = await service.stats(session)
    return NoteStats(notes=notes, owners=owners)
