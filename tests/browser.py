"""Headless Chromium for the explore page's tests: start it, click a heatmap cell.

Debian's packages (`apt-get install chromium chromium-driver`: /usr/bin/chromium and
/usr/bin/chromedriver); Selenium is pointed at that driver so that Selenium Manager never
tries to download one. The network is closed; the flags keep Chromium from calling out.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1300,1050")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            return f"no {path} (apt-get install chromium chromium-driver)"
    return None


@contextmanager
def chromium():
    """A headless Chromium WebDriver with a fresh profile, quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def wait_for(driver, script: str, timeout: float = 10.0):
    """The first truthy value of `script` (JavaScript returning a value)."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script(script))


CELL_POSITION = """
const model = Bokeh.documents[0].get_model_by_name('heatmap');
const view = Bokeh.index.get_one(model), box = view.canvas_view.el.getBoundingClientRect();
return [box.left + view.frame.x_scale.compute(arguments[0]),
        box.top + view.frame.y_scale.compute(arguments[1])];
"""


def click_cell(driver, i: int, j: int) -> dict:
    """Clicks heatmap cell (x index i, y index j) with the mouse, as a user does; returns
    the page's selected run (document.body.dataset.exploreRun) once it changed."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    before = driver.execute_script("return document.body.dataset.exploreRun || ''")
    x, y = driver.execute_script(CELL_POSITION, i, j)
    builder = ActionBuilder(driver)
    builder.pointer_action.move_to_location(int(round(x)), int(round(y)))
    builder.pointer_action.click()
    builder.perform()
    text = wait_for(driver, f"const s = document.body.dataset.exploreRun || '';"
                            f"return s !== {json.dumps(before)} && s;")
    return json.loads(text)


def model_data(driver, name: str) -> dict:
    """The `data` of the ColumnDataSource called `name` in the page."""
    return driver.execute_script(
        "const d = Bokeh.documents[0].get_model_by_name(arguments[0]).data;"
        "const o = {}; for (const [k, v] of Object.entries(d)) o[k] = Array.from(v);"
        "return o;", name)


def set_value(driver, name: str, value: str) -> None:
    """Sets the widget called `name` (a Select) to `value`, as choosing it does."""
    driver.execute_script(
        "Bokeh.documents[0].get_model_by_name(arguments[0]).value = arguments[1];", name, value)


def screenshot(page: str, out: str, cell: tuple[int, int], width: int = 1300,
               height: int = 1050) -> dict:
    """Opens `page`, clicks heatmap `cell` and saves a PNG screenshot to `out` (the README's
    plots/explore.png); returns the selected run."""
    from pathlib import Path

    with chromium() as driver:
        driver.set_window_size(width, height)
        driver.get(Path(page).resolve().as_uri())
        wait_for(driver, "return document.body.dataset.exploreView")
        state = click_cell(driver, *cell)
        from selenium.webdriver.common.actions.action_builder import ActionBuilder

        builder = ActionBuilder(driver)  # the mouse off the heatmap: no tooltip
        builder.pointer_action.move_to_location(width - 5, 5)
        builder.perform()
        driver.save_screenshot(out)
    return state


if __name__ == "__main__":  # python tests/browser.py PAGE.html OUT.png I J
    import sys

    print(screenshot(sys.argv[1], sys.argv[2], (int(sys.argv[3]), int(sys.argv[4]))))
