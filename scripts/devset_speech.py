"""Text-to-speech voices for the dev set: espeak-ng variants and Debian's festival diphone voices.

No CMU ARCTIC voice is used (flite's and festival's arctic/slt/awb/rms voices are reserved data), and no
MBROLA voice (Debian ships no mbrola binary). Every voice is deterministic: same text, same samples.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: `name` goes into the manifest, `engine` + `args` make the sound."""

    name: str  # 'espeak-ng:en-gb-scotland', 'festival:kal_diphone'
    engine: str  # 'espeak-ng' or 'festival'
    args: tuple[str, ...]  # espeak-ng: command-line flags; festival: the voice function to call
    package: str  # Debian package that provides it


def _espeak(voice: str, speed: int = 175, pitch: int = 50) -> Voice:
    name = (
        f"espeak-ng:{voice}" + (f" s{speed}" if speed != 175 else "") + (f" p{pitch}" if pitch != 50 else "")
    )
    return Voice(name, "espeak-ng", ("-v", voice, "-s", str(speed), "-p", str(pitch)), "espeak-ng")


def _festival(voice: str, package: str) -> Voice:
    return Voice(f"festival:{voice}", "festival", (f"(voice_{voice})",), package)


# English speakers: accents, genders (espeak-ng variants), speeds and pitches, two festival diphone voices.
VOICES: dict[str, tuple[Voice, ...]] = {
    "en": (
        _espeak("en-us"),
        _espeak("en-gb"),
        _espeak("en-gb-scotland", speed=160),
        _espeak("en-us+f2", speed=150, pitch=60),
        _espeak("en-gb+m3", pitch=35),
        _espeak("en-gb-x-rp+f4", speed=165, pitch=65),
        _espeak("en-029+m1", speed=155),
        _espeak("en-gb-x-gbclan+f3", speed=145),
        _festival("kal_diphone", "festvox-kallpc16k"),
        _festival("ked_diphone", "festvox-kdlpc16k"),
    ),
    "es": (_espeak("es"), _espeak("es+f2", speed=150, pitch=60)),
    "de": (_espeak("de"), _espeak("de+m3", speed=160, pitch=40)),
    "zh": (_espeak("cmn"), _espeak("cmn+f3", speed=150, pitch=60)),
}


def stable_index(key: str, n: int) -> int:
    """A number in [0, n) fixed by `key` (sha256, so it does not change between Python runs)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % n


def pick_voice(language: str, key: str) -> Voice:
    """The voice for one clip, chosen by a stable hash of `key` among that language's voices."""
    voices = VOICES[language]
    return voices[stable_index(key, len(voices))]


def synthesize(voice: Voice, text: str, out_wav: Path) -> None:
    """Speak `text` with `voice` into a mono WAV file."""
    if voice.engine == "espeak-ng":
        _run([_tool("espeak-ng"), *voice.args, "-w", str(out_wav), text], None)
    elif voice.engine == "festival":
        _run([_tool("text2wave"), "-eval", voice.args[0], "-o", str(out_wav)], text)
    else:
        raise ValueError(f"unknown speech engine {voice.engine!r}")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: run `make devset` (it installs the dev set's Debian packages)")
    return path


def _run(cmd: list[str], stdin_text: str | None) -> None:
    done = subprocess.run(cmd, input=stdin_text, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
