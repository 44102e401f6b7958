"""End to end in a real browser: `rig perform` on tiny model folders, driven by headless
Chromium (Debian's, through Playwright; never a downloaded browser), with a stand-in device.

The browser must be at /usr/bin/chromium (`apt-get install chromium`; `.ci/run` installs it). The
test skips without it, unless RIG_REQUIRE_BROWSER=1 (CI) makes that a failure. With
RIG_SCREENSHOTS=DIR it saves the performer page and the stage view there (docs/ in the repo).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import soundfile
from conftest import free_udp_port, wait_until
from net import free_tcp_port
from tiny_models import write_tiny_model

from rig.loops import loop_length
from rig.testing.standin import StandInDevice

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    if os.environ.get("RIG_REQUIRE_BROWSER") == "1":
        raise RuntimeError(
            f"{CHROMIUM} is missing: apt-get install --no-install-recommends chromium"
        )
    pytest.skip(f"needs Debian's Chromium at {CHROMIUM}", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


class Perform:
    """``rig perform`` (or another ``rig`` command that runs until Ctrl-C) as a performer starts
    it, in its own process group."""

    def __init__(
        self,
        tmp: Path,
        device: StandInDevice,
        args: tuple[str, ...] = ("perform",),
        env: dict[str, str] | None = None,
    ) -> None:
        self.ui_port = free_tcp_port()
        env = {
            **os.environ,
            "RIG_MODELS": str(tmp / "models"),
            "RIG_TAKES": str(tmp / "takes"),
            "RIG_PROMPTS": str(ROOT / "prompts"),
            "RIG_UI_PORT": str(self.ui_port),
            "RIG_OSC_PORT": str(device.port),
            "RIG_LISTEN_PORT": str(device.rig_port),
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rig", *args],
            env=env,
            cwd=tmp,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        wait_until(lambda: any("Ctrl-C stops the" in line for line in self.lines), timeout=120)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}/"

    def stop(self) -> int:
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout=30)


@pytest.fixture
def show(tmp_path: Path) -> Iterator[tuple[Perform, StandInDevice]]:
    write_tiny_model(tmp_path / "models" / "drums", name="drums", tags=("drums", "techno"))
    write_tiny_model(tmp_path / "models" / "pads", name="pads", tags=("pads", "ambient"), seed=1)
    with StandInDevice(rig_port=free_udp_port()) as device:
        perform = Perform(tmp_path, device)
        try:
            yield perform, device
        finally:
            if perform.proc.poll() is None:
                perform.stop()


def history_has(page, text: str) -> None:
    page.wait_for_function(
        f"document.querySelector('#history') && "
        f"document.querySelector('#history').innerText.includes({text!r})",
        timeout=60000,
    )


def test_prompt_to_take_to_device_and_stage(show, tmp_path: Path) -> None:
    perform, device = show
    shots = Path(os.environ.get("RIG_SCREENSHOTS", tmp_path))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(perform.url)
        box = page.locator("#prompt textarea, #prompt input").first
        box.fill("dusty drums, Tempo: 100, Bars: 1")
        box.press("Enter")
        history_has(page, "dusty drums")

        wavs = sorted((tmp_path / "takes").glob("*/0001_*.wav"))
        assert len(wavs) == 1
        assert soundfile.info(str(wavs[0])).frames == loop_length(100, 1, 4, 44100)
        (args,) = device.wait_for("/rig/load")
        assert args[:4] == (1, str(wavs[0]), 100.0, 1)

        page.locator("#history >> text=dusty drums >> visible=true").first.click()
        page.wait_for_selector("audio[src]", state="attached", timeout=20000)

        stage = browser.new_page(viewport={"width": 1280, "height": 720})
        stage.goto(perform.url + "stage/")
        stage.wait_for_function(
            "document.querySelector('#stage-prompt')?.innerText.includes('dusty drums')",
            timeout=20000,
        )
        stage.wait_for_selector("#stage-spectrogram", timeout=20000)
        box.fill("slow airy pad, Genre: Ambient")
        box.press("Enter")
        stage.wait_for_function(  # the stage follows the new prompt and its take
            "document.querySelector('#stage-prompt')?.innerText.includes('slow airy pad') && "
            "document.querySelector('#stage-about')?.innerText.includes('pads')",
            timeout=60000,
        )
        history_has(page, "slow airy pad")
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "performer.png"), full_page=True)
        stage.screenshot(path=str(shots / "stage.png"))
        load_preset_and_generate(page, tmp_path)
        browser.close()
    assert perform.stop() == 0
    log = "".join(perform.lines)
    assert "performer page: http://127.0.0.1:" in log and "Traceback" not in log


def choose(page, dropdown: str, option: str) -> None:
    """Pick ``option`` in the Gradio dropdown ``#dropdown`` as a performer does."""
    page.locator(f"#{dropdown} input").click()
    page.locator(f"ul[role=listbox] li:has-text({option!r})").first.click()


def load_preset_and_generate(page, tmp_path: Path) -> None:
    """Peak 3 (seed 4242, slot 2) loaded on the page, then Enter: the take keeps the seed."""
    choose(page, "preset-set", "Peak")
    choose(page, "preset", "3. heavy bass")
    page.locator("#load-preset").click()
    page.get_by_text("fields", exact=True).click()  # the accordion with the seed
    page.wait_for_function(
        "document.querySelector('#seed input, #seed textarea')?.value === '4242'", timeout=20000
    )
    box = page.locator("#prompt textarea, #prompt input").first
    assert box.input_value().startswith("heavy bass, dark")
    box.press("Enter")
    history_has(page, "heavy bass")
    sidecars = sorted((tmp_path / "takes").glob("*/0003_*.json"))
    assert len(sidecars) == 1
    recipe = json.loads(sidecars[0].read_text())["recipe"]
    assert (recipe["seed"], recipe["slot"]) == (4242, 2)


def test_a_remote_host_plays_on_the_laptop_through_the_companion(tmp_path: Path) -> None:
    """`rig perform --remote` on the "host", `rig companion` on the "laptop" (its own take folder
    and page port), a stand-in device on the laptop, and the pages in Chromium through the
    companion."""
    write_tiny_model(tmp_path / "models" / "drums", name="drums", tags=("drums", "techno"))
    token = "remote-test-token"
    laptop = tmp_path / "laptop"
    with StandInDevice(rig_port=free_udp_port(), refuse_outside=laptop.resolve()) as device:
        host = Perform(tmp_path, device, ("perform", "--remote"),
                       {"RIG_TOKEN": token, "RIG_LISTEN_PORT": str(free_udp_port())})  # fmt: skip
        companion = None
        try:
            assert f"rig companion {host.url} --token {token}" in "".join(host.lines)
            for route in ("", "stage/", "rig/takes/x/0001_a.wav"):  # loopback needs it too
                assert httpx.get(host.url + route).status_code == 401
            companion = Perform(tmp_path, device, ("companion", host.url, "--token", token),
                                {"RIG_TAKES": str(laptop)})  # fmt: skip
            wait_until(lambda: any("connected to ws://" in line for line in companion.lines))
            device.send("/rig/hello", "2", 8, device.port)
            assert device.wait_for("/rig/folder") == [(str(laptop.resolve()),)]
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS
                )
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(companion.url)  # the laptop's address: no token asked
                box = page.locator("#prompt textarea, #prompt input").first
                box.fill("dusty drums, Tempo: 100, Bars: 1")
                box.press("Enter")
                history_has(page, "dusty drums")
                stage = browser.new_page(viewport={"width": 1280, "height": 720})
                stage.goto(companion.url + "stage/")
                stage.wait_for_function(
                    "document.querySelector('#stage-prompt')?.innerText.includes('dusty drums')",
                    timeout=20000,
                )
                browser.close()
            (on_host,) = sorted((tmp_path / "takes").glob("*/0001_*.wav"))
            (args,) = device.wait_for("/rig/load")
            local = laptop.resolve() / on_host.relative_to(tmp_path / "takes")
            assert args[:4] == (1, str(local), 100.0, 1)
            assert local.read_bytes() == on_host.read_bytes()
            wait_until(lambda: (tmp_path / "takes" / ".slots.json").is_file())  # acknowledged
        finally:
            for proc in (companion, host):
                if proc is not None and proc.proc.poll() is None:
                    assert proc.stop() == 0
    assert "Traceback" not in "".join(host.lines + companion.lines)
