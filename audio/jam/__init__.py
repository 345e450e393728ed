"""Live jam media server: rooms, jitter buffers, mix-minus mixer, recorder.

Pure asyncio + aiortc + numpy; no Django. See ARCHITECTURE.md §6. Each room's
DSP runs on a clock thread of its own, never on the event loop (room.py).
"""

from .ice import IceConfig, host_addresses
from .jitter import JitterBuffer, JitterConfig, JitterStats
from .mixer import Metronome
from .opus import Opus10msEncoder, OpusDecoder, OpusEncoder, use_10ms_opus
from .recorder import Take
from .room import (
    JamError,
    JamRoom,
    JamServer,
    RoomFull,
    ServerFull,
    TickInfo,
    UnknownParticipant,
    tap_receiver,
)

__all__ = [
    "IceConfig",
    "JamError",
    "JamRoom",
    "JamServer",
    "JitterBuffer",
    "JitterConfig",
    "JitterStats",
    "Metronome",
    "Opus10msEncoder",
    "OpusDecoder",
    "OpusEncoder",
    "RoomFull",
    "ServerFull",
    "Take",
    "TickInfo",
    "UnknownParticipant",
    "host_addresses",
    "tap_receiver",
    "use_10ms_opus",
]
