"""Reads a WAV header by hand, checking the sizes it declares against the bytes it has."""
import struct
from dataclasses import dataclass


@dataclass
class WavInfo:
    sample_rate: int
    channels: int
    bits: int
    seconds: float


def wav_info(data: bytes) -> WavInfo:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", data[:12]
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8, "RIFF size disagrees with the file"
    offset, fmt = 12, None
    while offset + 8 <= len(data):
        chunk, size = struct.unpack_from("<4sI", data, offset)
        if chunk == b"fmt ":
            encoding, channels, rate, byte_rate, _, bits = struct.unpack_from("<HHIIHH", data, offset + 8)
            assert encoding == 1 and byte_rate == rate * channels * bits // 8
            fmt = (rate, channels, bits)
        if chunk == b"data":
            assert fmt and offset + 8 + size == len(data), "data size disagrees with the file"
            rate, channels, bits = fmt
            return WavInfo(rate, channels, bits, size / (rate * channels * bits // 8))
        offset += 8 + size + size % 2
    raise AssertionError("no data chunk")
