"""AWS binary event-stream framing (`application/vnd.amazon.eventstream`): decoder and encoder.

Bedrock's ConverseStream (and InvokeModelWithResponseStream) answer with this framing instead of
SSE. One message is::

    prelude   total_length:u32  headers_length:u32  prelude_crc:u32   (CRC32 of the first 8 bytes)
    headers   name_len:u8 name  type:u8 value      (repeated, headers_length bytes in all)
    payload   total_length - headers_length - 16 bytes
    trailer   message_crc:u32                      (CRC32 of every byte before it)

all big-endian. Header value types: 0 true, 1 false, 2 int8, 3 int16, 4 int32, 5 int64,
6 bytes (u16 length), 7 string (u16 length), 8 timestamp (int64 ms), 9 uuid (16 bytes).

The decoder is incremental (bytes arrive in arbitrary pieces) and checks both CRCs; the encoder
exists for tests and mock servers (fixtures are written with it). Pure: no I/O.
"""

from __future__ import annotations

import struct
from binascii import crc32
from dataclasses import dataclass
from typing import Any

_PRELUDE = struct.Struct(">III")
_U32 = struct.Struct(">I")
_MAX_MESSAGE = 24 * 1024 * 1024 + 128 * 1024  # botocore's payload + headers limits
MIN_MESSAGE = 16  # prelude (12) + message CRC (4)


class EventStreamError(ValueError):
    """The bytes are not a valid event stream (bad CRC, bad lengths, unknown header type)."""


@dataclass(slots=True)
class Message:
    headers: dict[str, Any]
    payload: bytes


class Decoder:
    """Feed bytes, get whole messages back; holds a partial message between calls."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    @property
    def pending(self) -> int:
        """Bytes held back: a partial message (non-zero at EOF means the stream was cut)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        buf = self._buf + data if self._buf else data
        out: list[Message] = []
        pos = 0
        n = len(buf)
        while n - pos >= 12:
            total, hlen, pcrc = _PRELUDE.unpack_from(buf, pos)
            if crc32(buf[pos:pos + 8]) != pcrc:
                raise EventStreamError("event-stream prelude CRC mismatch")
            if total < MIN_MESSAGE or total > _MAX_MESSAGE or hlen > total - MIN_MESSAGE:
                raise EventStreamError(f"event-stream message has invalid lengths ({total}, {hlen})")
            if n - pos < total:
                break
            end = pos + total
            (mcrc,) = _U32.unpack_from(buf, end - 4)
            if crc32(buf[pos:end - 4]) != mcrc:
                raise EventStreamError("event-stream message CRC mismatch")
            hstart = pos + 12
            headers = _decode_headers(buf[hstart:hstart + hlen])
            out.append(Message(headers, bytes(buf[hstart + hlen:end - 4])))
            pos = end
        self._buf = buf[pos:] if pos < n else b""
        return out


def _decode_headers(data: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    pos, n = 0, len(data)
    try:
        while pos < n:
            nlen = data[pos]
            name = data[pos + 1:pos + 1 + nlen].decode("utf-8")
            pos += 1 + nlen
            htype = data[pos]
            pos += 1
            if htype == 0:
                value: Any = True
            elif htype == 1:
                value = False
            elif htype == 2:
                value = struct.unpack_from(">b", data, pos)[0]
                pos += 1
            elif htype == 3:
                value = struct.unpack_from(">h", data, pos)[0]
                pos += 2
            elif htype == 4:
                value = struct.unpack_from(">i", data, pos)[0]
                pos += 4
            elif htype in (5, 8):
                value = struct.unpack_from(">q", data, pos)[0]
                pos += 8
            elif htype in (6, 7):
                (vlen,) = struct.unpack_from(">H", data, pos)
                raw = data[pos + 2:pos + 2 + vlen]
                if len(raw) != vlen:
                    raise EventStreamError("event-stream header value is truncated")
                value = raw.decode("utf-8") if htype == 7 else bytes(raw)
                pos += 2 + vlen
            elif htype == 9:
                value = bytes(data[pos:pos + 16])
                pos += 16
            else:
                raise EventStreamError(f"unknown event-stream header type {htype}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed event-stream headers ({type(exc).__name__})") from None
    return headers


def encode_message(headers: dict[str, Any], payload: bytes) -> bytes:
    """One event-stream message; str header values are type 7, bytes type 6, bool 0/1, int type 4."""
    hbytes = b"".join(_encode_header(k, v) for k, v in headers.items())
    total = 12 + len(hbytes) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hbytes))
    prelude += _U32.pack(crc32(prelude))
    body = prelude + hbytes + payload
    return body + _U32.pack(crc32(body))


def _encode_header(name: str, value: Any) -> bytes:
    raw = name.encode("utf-8")
    out = bytes([len(raw)]) + raw
    if value is True:
        return out + b"\x00"
    if value is False:
        return out + b"\x01"
    if isinstance(value, int):
        return out + b"\x04" + struct.pack(">i", value)
    if isinstance(value, bytes):
        return out + b"\x06" + struct.pack(">H", len(value)) + value
    data = str(value).encode("utf-8")
    return out + b"\x07" + struct.pack(">H", len(data)) + data


def event(event_type: str, payload: bytes) -> bytes:
    """A Bedrock stream event (`:message-type event`) with a JSON payload."""
    return encode_message({":event-type": event_type, ":content-type": "application/json",
                           ":message-type": "event"}, payload)


def exception(exception_type: str, payload: bytes) -> bytes:
    """A Bedrock in-stream exception (`:message-type exception`), e.g. `throttlingException`."""
    return encode_message({":exception-type": exception_type, ":content-type": "application/json",
                           ":message-type": "exception"}, payload)


__all__ = ["Decoder", "EventStreamError", "Message", "encode_message", "event", "exception"]
