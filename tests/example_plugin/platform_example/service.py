"""Business logic of the example plugin: notes per owner (no HTTP here).

Functions take an open session and raise the platform's domain errors; the caller owns
the transaction. ``validate`` is the ``example_validate_note`` hook caller (or any callable
with the same keyword arguments returning a list of reasons).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict, NotFound, ValidationFailed, publish
from platform_example.events import NoteCreated
from platform_example.models import Note
from platform_example.schemas import NoteCreate, NoteUpdate

Validate = Callable[..., Sequence[str | None]]


def _no_validators(**_: object) -> list[str | None]:
    return []


def check_note(validate: Validate, *, title: str, body: str, owner_id: int) -> None:
    """Raise ``ValidationFailed`` listing every reason the validators give to refuse."""
    reasons = [r for r in validate(title=title, body=body, owner_id=owner_id) if r]
    if reasons:
        raise ValidationFailed(
            f"note refused: {reasons[0]}",
            errors=[{"field": "note", "message": reason} for reason in reasons],
        )


async def count_notes(session: AsyncSession, owner_id: int | None = None) -> int:
    """How many notes exist (of one owner, when given)."""
    stmt = select(func.count()).select_from(Note)
    if owner_id is not None:
        stmt = stmt.where(Note.owner_id == owner_id)
    return int((await session.execute(stmt)).scalar_one())


async def list_notes(session: AsyncSession, owner_id: int) -> list[Note]:
    """The owner's notes, oldest first."""
    rows = await session.execute(select(Note).where(Note.owner_id == owner_id).order_by(Note.id))
    return list(rows.scalars())


async def get_note(session: AsyncSession, owner_id: int, note_id: int) -> Note:
    """One of the owner's notes; ``NotFound`` for missing notes and other owners' notes."""
    note = await session.get(Note, note_id)
    if note is None or note.owner_id != owner_id:
        raise NotFound(f"note {note_id} not found")
    return note


async def _flush(session: AsyncSession, title: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"you already have a note titled {title!r}") from exc


async def create_note(
    session: AsyncSession,
    owner_id: int,
    data: NoteCreate,
    *,
    max_notes: int,
    validate: Validate = _no_validators,
    actor: str | None = None,
) -> Note:
    """Create a note; ``Conflict`` on a duplicate title or past ``max_notes``.

    Publishes ``example.note.created`` in the same transaction.
    """
    check_note(validate, title=data.title, body=data.body, owner_id=owner_id)
    if await count_notes(session, owner_id) >= max_notes:
        raise Conflict(f"note limit reached: at most {max_notes} notes per user")
    note = Note(owner_id=owner_id, title=data.title, body=data.body)
    session.add(note)
    await _flush(session, data.title)
    publish(session, NoteCreated(note_id=note.id, owner_id=owner_id, title=note.title), actor=actor)
    return note


async def update_note(
    session: AsyncSession,
    owner_id: int,
    note_id: int,
    data: NoteUpdate,
    *,
    validate: Validate = _no_validators,
) -> Note:
    """Change a note's title and/or body; ``NotFound``, ``Conflict`` as for create."""
    note = await get_note(session, owner_id, note_id)
    title = data.title if data.title is not None else note.title
    body = data.body if data.body is not None else note.body
    check_note(validate, title=title, body=body, owner_id=owner_id)
    note.title, note.body = title, body
    if data.pinned is not None:
        note.pinned = data.pinned
    await _flush(session, title)
    return note


async def delete_note(session: AsyncSession, owner_id: int, note_id: int) -> None:
    """Delete one of the owner's notes; ``NotFound`` when it is not theirs."""
    note = await get_note(session, owner_id, note_id)
    await session.delete(note)
    await session.flush()


async def delete_owner_notes(session: AsyncSession, owner_id: int) -> int:
    """Delete every note of ``owner_id``; return how many were deleted."""
    result = await session.execute(delete(Note).where(Note.owner_id == owner_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def purge_before(session: AsyncSession, cutoff: datetime) -> int:
    """Delete notes last updated before ``cutoff``; return how many were deleted."""
    result = await session.execute(delete(Note).where(Note.updated_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def stats(session: AsyncSession) -> tuple[int, int]:
    """``(notes, distinct owners)`` across every user."""
    stmt = select(func.count(), func.count(func.distinct(Note.owner_id))).select_from(Note)
    row = (await session.execute(stmt)).one()
    return int(row[0]), int(row[1])
