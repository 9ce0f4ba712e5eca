"""The explorer in a real browser: JupyterLab started by the test, driven by headless Chromium through Selenium.

As a user does after ``make lab``: the notebook is opened from a ``notebooks/`` folder (so the kernel starts
there), Run All with its default parameters (``params/nec.yaml``, whose cohort is ``data/synth/nec``), and the
case browser is clicked: the label filter, the case list, then with a finished run the model, the outcome filter
and the Grad-CAM overlay. What the page shows is checked against the manifest and the run's own files.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``) and
``selenium`` (the test extra); skipped with that reason when they are missing. Set ``MEDLIB_BROWSER_SCREENSHOT``
to a path to keep a screenshot of the browser (docs/explorer.png is made that way).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("Chromium and its driver are not installed (Debian: apt-get install -y chromium chromium-driver)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

TOKEN = "medlib-browser-test"
RUN = "runs/nec/browser"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake_run(workspace: Path, fake_run) -> Path:
    """A finished run of the default study (``fake_run``, conftest) with thresholds frozen in metrics.json and a
    Grad-CAM map per case of its first model."""
    from medlib.data.cohort import load_cohort
    from medlib.pipelines.prepare import load_study
    from medlib.schema import FrozenThreshold, RunMetrics

    cfg = load_study("params/nec.yaml", check=False, root=workspace)
    cohort = load_cohort(cfg.cohort.manifest, cfg.cohort)
    metrics = RunMetrics(thresholds={m.display_name: FrozenThreshold(value=0.5, method="youden")
                                     for m in cfg.models}).to_json()
    return fake_run(workspace, cfg, cohort, {cfg.models[0].display_name: (16, 16)}, metrics, run_id="browser")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, fake_run):
    """A workspace with the default study's cohort and a run, its notebooks/ folder served by JupyterLab."""
    from medlib import synth

    workspace = tmp_path_factory.mktemp("workspace")
    synth.generate("nec", workspace / "data" / "synth", seed=0, scale=0.1, image_size=64)
    (workspace / "notebooks").mkdir()
    shutil.copy(PROJECT_ROOT / "notebooks" / "explore.ipynb", workspace / "notebooks" / "explore.ipynb")
    os.environ["MEDLIB_WORKSPACE"] = str(workspace)
    try:
        _fake_run(workspace, fake_run)
    finally:
        del os.environ["MEDLIB_WORKSPACE"]
    nb = json.loads((PROJECT_ROOT / "notebooks" / "explore.ipynb").read_text())
    params = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    params["source"] = "".join(params["source"]).replace('run_dir: str = ""', f'run_dir: str = "{RUN}"')
    (workspace / "notebooks" / "explore-run.ipynb").write_text(json.dumps(nb))

    port = _free_port()
    env = {**os.environ, "MEDLIB_WORKSPACE": str(workspace), "OMP_NUM_THREADS": "1",
           "JUPYTER_CONFIG_DIR": str(workspace / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(workspace / ".runtime")}
    log = (workspace / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ServerApp.port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={workspace / 'notebooks'}", "--LabApp.news_url="],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(url, server, workspace / "jupyterlab.log")
        yield url, workspace
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        log.close()


def _wait_for_server(url: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("JupyterLab did not start")


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1100",
                "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _prompts(driver) -> list[str]:
    return [p.text.strip() for p in driver.find_elements(By.CSS_SELECTOR, ".jp-CodeCell .jp-InputPrompt")]


def _run_all(driver, url: str, name: str, workspace: Path) -> None:
    """Open the notebook, Run All from the Run menu, and wait until every code cell has run (a screenshot of the
    page is kept in the workspace when it does not)."""
    driver.get(f"{url}/lab/tree/{name}?reset&token={TOKEN}")  # reset: this notebook alone, no earlier tabs
    wait = WebDriverWait(driver, 120)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell"))
    wait.until(lambda d: "Idle" in d.find_element(By.CSS_SELECTOR, "#jp-main-statusbar").text)
    for no in driver.find_elements(By.XPATH, "//button[normalize-space()='No']"):  # the news toast, if shown
        no.click()
    for _ in range(3):  # a click that lands while the page still settles is lost: try again
        driver.find_element(By.XPATH, "//div[contains(@class,'lm-MenuBar-itemLabel') and text()='Run']").click()
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li[data-command='runmenu:run-all']"))
        driver.find_element(By.CSS_SELECTOR, "li[data-command='runmenu:run-all']").click()
        try:
            WebDriverWait(driver, 15).until(lambda d: any(p != "[ ]:" for p in _prompts(d)))
            break
        except TimeoutException:
            continue

    def done(d) -> bool:
        prompts = _prompts(d)
        return bool(prompts) and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)

    try:
        WebDriverWait(driver, 420, poll_frequency=1).until(done)
    except TimeoutException:
        driver.save_screenshot(str(workspace / f"{name}.timeout.png"))
        raise AssertionError(f"{name}: not every cell ran: {_prompts(driver)}") from None
    outputs = " ".join(o.text for o in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output"))
    assert "Traceback" not in outputs, outputs[:3000]


def _dropdown(driver, label: str) -> Select:
    return Select(driver.find_element(
        By.XPATH, f"//div[contains(@class,'widget-dropdown')][.//label[normalize-space()='{label}']]//select"))


def _count_text(driver) -> str:
    texts = [e.text.strip() for e in driver.find_elements(By.CSS_SELECTOR, ".widget-html")
             if re.fullmatch(r"\d+ of \d+ cases", e.text.strip())]
    return texts[0] if texts else ""


def _html_with(driver, words: str) -> str:
    """The text of the widget HTML that holds ``words`` ("" when none does yet)."""
    return next((e.text for e in driver.find_elements(By.CSS_SELECTOR, ".widget-html") if words in e.text), "")


def _image_src(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, ".widget-image").get_attribute("src") or ""


def _wait_change(driver, read, before: str, timeout: float = 60) -> str:
    WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: read(d) not in ("", before))
    return read(driver)


def test_explorer_runs_all_as_opened_and_filters_by_label(lab, browser):
    url, workspace = lab
    manifest = pd.read_csv(workspace / "data" / "synth" / "nec" / "manifest.csv", dtype=str)
    _run_all(browser, url, "explore.ipynb", workspace)
    WebDriverWait(browser, 60).until(lambda d: _count_text(d))
    assert _count_text(browser) == f"{len(manifest)} of {len(manifest)} cases"
    assert "No run given: no predictions, outcomes or Grad-CAM." in _html_with(browser, "No run given")

    first_image = _image_src(browser)
    _dropdown(browser, "Label").select_by_visible_text("surgery (positive)")
    positives = int((manifest["label"] == "surgery").sum())
    WebDriverWait(browser, 60).until(lambda d: _count_text(d) == f"{positives} of {len(manifest)} cases")
    case_list = Select(browser.find_element(By.CSS_SELECTOR, ".widget-select select"))
    shown = [o.text.split(" · ")[0] for o in case_list.options]  # "<case> · <label>[ · <outcome>]"
    assert sorted(shown) == sorted(manifest.loc[manifest["label"] == "surgery", "case_id"])
    case_list.select_by_index(1)
    assert _wait_change(browser, _image_src, first_image).startswith(("data:image/png", "blob:"))
    WebDriverWait(browser, 30).until(lambda d: shown[1] in d.find_element(By.CSS_SELECTOR, "body").text)


def test_explorer_with_a_run_shows_outcomes_thresholds_and_gradcam(lab, browser):
    url, workspace = lab
    predictions = pd.read_csv(workspace / RUN / "predictions.csv")
    _run_all(browser, url, "explore-run.ipynb", workspace)
    WebDriverWait(browser, 60).until(lambda d: _count_text(d))
    model = _dropdown(browser, "Model").first_selected_option.text
    assert model == predictions["model"].iloc[0]
    note = _html_with(browser, "Threshold for")
    assert f"Threshold for {model}: 0.5 (stored in the run's metrics.json" in note

    mine = predictions[predictions["model"] == model]
    tp = mine[(mine["y_true"] == 1) & (mine["score"] >= 0.5)]["case_id"].astype(str).tolist()
    _dropdown(browser, "Outcome").select_by_visible_text("TP")
    WebDriverWait(browser, 60).until(lambda d: _count_text(d).startswith(f"{len(tp)} of "))
    case_list = Select(browser.find_element(By.CSS_SELECTOR, ".widget-select select"))
    options = [o.text.split(" · ") for o in case_list.options]
    assert sorted(o[0] for o in options) == sorted(tp) and {o[-1] for o in options} == {"TP"}

    before = _image_src(browser)
    browser.find_element(By.XPATH, "//div[contains(@class,'widget-checkbox')][.//*[normalize-space()='Grad-CAM']]"
                                   "//input").click()
    _wait_change(browser, _image_src, before)
    widget = browser.find_element(By.CSS_SELECTOR, ".widget-image")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", widget)
    time.sleep(0.5)
    keep = os.environ.get("MEDLIB_BROWSER_SCREENSHOT")
    path = Path(keep) if keep else workspace / "explorer.png"
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000
