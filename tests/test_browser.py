"""The built book in a real browser.

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``, which ``.ci/run``
installs when it runs as root on Debian) opens every page of the book from a web
server on 127.0.0.1, as a reader's browser opens the published site, with every
other host unreachable, as for a reader who is offline. For each page it checks
that the page loads without console errors, that every image loads, that math is
typeset by the MathJax the site ships, and that the launch, repository and
download buttons point at the repository named in ``_config.yml``.

It also saves a screenshot of one chapter. With ``SCALINGKIT_UPDATE_SCREENSHOT=1``
the screenshot replaces the README's ``book/images/readme-screenshot.png``. With
``SCALINGKIT_BOOK_HTML=path/to/_build/html`` the tests use that build instead of
building the book (``jupyter-book build .`` writes ``_build/html``).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlparse

import jupytext
import pytest
import yaml
from bs4 import BeautifulSoup
from conftest import ROOT, chapter_files, toc_files
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
NO_CHROMIUM = (
    "no Chromium: install Debian's chromium and chromium-driver "
    "(`apt-get install chromium chromium-driver`; .ci/run does it when root on Debian)"
)

# The page whose screenshot the README shows, and where the README keeps it.
SCREENSHOT_PAGE = "book/chinchilla"
README_SCREENSHOT = ROOT / "book" / "images" / "readme-screenshot.png"

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1280,1200",
    # Offline but for the local server: a page that needs the internet fails here.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)

# Console entries that are not the book's fault, each matched in full by an exact pattern.
# - Sphinx 7's HTML builder writes an inline script added after its start twice (once with
#   the filename None, once with ""); sphinx-thebe's `const THEBE_JS_URL = ...` is such a
#   script, so its second copy is a SyntaxError that changes nothing (the two copies are
#   identical; test_only_known_duplicate_scripts checks that). Fixed by Sphinx 8.2
#   (sphinx-doc/sphinx#13402), which jupyter-book 1.x (`sphinx~=7.0`) cannot use.
IGNORED_CONSOLE: tuple[re.Pattern[str], ...] = (
    re.compile(r"http://127\.0\.0\.1:\d+/[\w/.-]+\.html \d+:\d+ Uncaught SyntaxError: "
               r"Identifier 'THEBE_JS_URL' has already been declared"),
)

PAGE_TIMEOUT_S = 60

# Resolves once MathJax has typeset the page: true, false where the page loads no
# MathJax (Sphinx adds it only to pages with math), or the error's text.
WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const startup = window.MathJax && window.MathJax.startup;
if (!startup || !startup.promise) { done(false); return; }
startup.promise.then(() => document.fonts.ready).then(() => done(true), e => done(String(e)));
"""

# What the page shows: images, math and its typeset form, prose without code, buttons.
READ_PAGE = """
const main = document.querySelector('main') || document.body;
const prose = main.cloneNode(true);
prose.querySelectorAll('pre, code, script, style, mjx-container, .highlight')
     .forEach(node => node.remove());
const hrefs = selector => Array.from(document.querySelectorAll(selector), a => a.href);
return {
  images: Array.from(document.images, img => ({
    src: img.currentSrc || img.src, complete: img.complete, width: img.naturalWidth})),
  math: main.querySelectorAll('.math').length,
  untypeset: Array.from(main.querySelectorAll('.math'))
                  .filter(node => !node.querySelector('mjx-container'))
                  .map(node => node.textContent.slice(0, 80)),
  typeset: main.querySelectorAll('mjx-container').length,
  prose: prose.textContent,
  repository: hrefs('a.btn-source-repository-button'),
  launch: hrefs('.dropdown-launch-buttons a'),
  download: hrefs('.dropdown-download-buttons a'),
  scripts: Array.from(document.scripts, s => s.src).filter(Boolean),
};
"""

# TeX that MathJax should have turned into math; none of it may stay in the prose.
RAW_TEX = ("$$", "\\(", "\\)", "\\[", "\\]", "\\begin{", "\\frac")


@dataclass
class PageReport:
    """What the browser saw on one page."""

    url: str
    console_errors: list[str]
    mathjax: bool | str
    seen: dict


def _config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _repository() -> tuple[str, str]:
    """The repository URL from ``_config.yml`` and its ``owner/name`` on GitHub."""
    url = _config()["repository"]["url"].rstrip("/")
    parsed = urlparse(url)
    assert parsed.scheme == "https" and parsed.netloc == "github.com", url
    slug = parsed.path.strip("/")
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", slug), url
    return url, slug


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class names it so
        pass


@pytest.fixture(scope="session")
def site_html(request) -> Path:
    """The built site: ``SCALINGKIT_BOOK_HTML`` if set, else the session's book build."""
    prebuilt = os.environ.get("SCALINGKIT_BOOK_HTML")
    if prebuilt:
        html = Path(prebuilt).resolve()
        assert (html / "index.html").is_file(), f"SCALINGKIT_BOOK_HTML={prebuilt}: no index.html"
        return html
    html, _ = request.getfixturevalue("book_build")
    return html


@pytest.fixture(scope="session")
def site_url(site_html: Path) -> Iterator[str]:
    """Serve the built site on 127.0.0.1 (a free port) for the session."""
    handler = functools.partial(_QuietHandler, directory=str(site_html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser(tmp_path_factory) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a new, empty profile, driven by the system chromedriver."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(NO_CHROMIUM)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager (which would download a driver) never runs.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    driver.set_script_timeout(PAGE_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _load(driver: webdriver.Chrome, url: str) -> tuple[bool | str, list[str]]:
    """Open ``url``, wait for the page and its math; return MathJax's state and the
    console's SEVERE entries (each entry is read once: the log empties as it is read)."""
    driver.get(url)
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.execute_script("return document.readyState") == "complete")
    mathjax = driver.execute_async_script(WAIT_FOR_MATHJAX)
    errors = [entry["message"] for entry in driver.get_log("browser")
              if entry["level"] == "SEVERE"
              and not any(p.fullmatch(entry["message"]) for p in IGNORED_CONSOLE)]
    return mathjax, errors


@pytest.fixture(scope="session")
def visit(browser, site_url) -> Callable[[str], PageReport]:
    """Open a page once per session and keep what the browser saw."""
    reports: dict[str, PageReport] = {}

    def _visit(name: str) -> PageReport:
        if name not in reports:
            url = urljoin(site_url, f"{name}.html")
            mathjax, errors = _load(browser, url)
            reports[name] = PageReport(url, errors, mathjax, browser.execute_script(READ_PAGE))
        return reports[name]

    return _visit


PAGES = toc_files()
CHAPTERS = [str(p.relative_to(ROOT).with_suffix("")) for p in chapter_files()]


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


@pytest.mark.parametrize("name", PAGES, ids=_short)
def test_page_loads_without_console_errors(visit, name):
    report = visit(name)
    assert not report.console_errors, f"{report.url}: {report.console_errors}"


@pytest.mark.parametrize("name", PAGES, ids=_short)
def test_every_image_loads(visit, name):
    report = visit(name)
    broken = [img["src"] for img in report.seen["images"]
              if not img["complete"] or img["width"] == 0]
    assert not broken, f"{report.url}: images that did not load: {broken}"


def test_chapters_show_figures(visit):
    for name in CHAPTERS:
        assert visit(name).seen["images"], f"{name}: no image at all"


@pytest.mark.parametrize("name", PAGES, ids=_short)
def test_math_is_typeset(visit, name, site_url):
    report = visit(name)
    seen = report.seen
    if seen["math"]:
        assert report.mathjax is True, f"{report.url}: MathJax did not finish: {report.mathjax}"
        assert not seen["untypeset"], f"{report.url}: math left as TeX: {seen['untypeset'][:5]}"
        assert seen["typeset"] >= seen["math"]
        # The MathJax that typeset it came from this site, not from a CDN.
        mathjax = [src for src in seen["scripts"] if "mathjax" in src.lower()]
        assert mathjax and all(src.startswith(site_url) for src in mathjax), mathjax
    left = [tex for tex in RAW_TEX if tex in seen["prose"]]
    assert not left, f"{report.url}: raw TeX {left} in the rendered text"


def test_math_pages_exist(visit):
    # The math check above must have something to check.
    assert sum(visit(name).seen["math"] for name in PAGES) > 20


@pytest.mark.parametrize("name", CHAPTERS, ids=_short)
def test_buttons_point_at_the_repository(visit, name):
    url, slug = _repository()
    config = _config()
    assert config["html"]["use_repository_button"] is True
    seen = visit(name).seen
    assert seen["repository"] == [url]
    # Launch: one link per service configured, each opening this chapter of this repository
    # on its branch, and each a file the service can open.
    services = config["launch_buttons"]
    expected_hosts = {urlparse(services[key]).netloc
                      for key in ("binderhub_url", "colab_url") if services.get(key)}
    launch = seen["launch"]
    assert {urlparse(href).netloc for href in launch} == expected_hosts, launch
    branch = config["repository"]["branch"]
    for href in launch:
        assert f"/{slug}/{branch}" in href or f"/{slug}/blob/{branch}/" in href, href
        assert f"{name}." in href, f"{name}: launch button {href} opens another file"
        if urlparse(href).netloc == "colab.research.google.com":
            assert urlparse(href).path.endswith(".ipynb"), f"Colab opens only .ipynb: {href}"
    # Download: the chapter's source as the repository holds it, and as a notebook.
    downloads = {Path(urlparse(href).path).suffix: href for href in seen["download"]}
    assert {".md", ".ipynb"} <= set(downloads), seen["download"]
    source = (ROOT / f"{name}.md").read_text()
    assert _fetch(downloads[".md"]).decode() == source
    notebook = jupytext.reads(_fetch(downloads[".ipynb"]).decode(), fmt="ipynb")
    expected = jupytext.reads(source, fmt="md:myst")
    code = [[c.source for c in nb.cells if c.cell_type == "code"] for nb in (notebook, expected)]
    assert code[0] == code[1] and code[0], f"{name}: the .ipynb download is not the chapter"


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def test_only_known_duplicate_scripts(site_html):
    """The one ignored console error has the cause IGNORED_CONSOLE names: identical
    copies of sphinx-thebe's inline script, and no other inline script declared twice."""
    for page in sorted(site_html.rglob("*.html")):
        soup = BeautifulSoup(page.read_text(), "html.parser")
        inline = [s.string for s in soup.find_all("script", src=False) if s.string]
        declaring = [body for body in inline if re.match(r"\s*(const|let)\s", body)]
        repeated = {body for body in declaring if declaring.count(body) > 1}
        assert all(body.lstrip().startswith("const THEBE_JS_URL") for body in repeated), (
            page.name, repeated)


def test_no_page_loads_mathjax_from_a_cdn(site_html):
    """Static check of every built page: the MathJax script is the site's own copy."""
    problems = []
    for page in sorted(site_html.rglob("*.html")):
        soup = BeautifulSoup(page.read_text(), "html.parser")
        for script in soup.find_all("script", src=True):
            src = script["src"]
            if "mathjax" not in src.lower():
                continue
            if urlparse(src).scheme or src.startswith("//"):
                problems.append(f"{page.name}: {src}")
            elif not (page.parent / src.split("?")[0]).is_file():
                problems.append(f"{page.name}: {src} is not in the site")
    assert not problems, problems[:10]
    assert (site_html / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_screenshot_of_a_chapter(browser, site_url, tmp_path):
    """Screenshot the chapter the README shows, at its first figure."""
    mathjax, errors = _load(browser, urljoin(site_url, f"{SCREENSHOT_PAGE}.html"))
    assert mathjax is True and not errors, (mathjax, errors)
    # The figure at the top, below the theme's 48 px header; prose and math below it.
    browser.execute_script("document.querySelector('main figure').scrollIntoView();"
                           "window.scrollBy(0, -160);")
    shot = tmp_path / "readme-screenshot.png"
    assert browser.save_screenshot(str(shot))
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 30_000, len(png)
    if os.environ.get("SCALINGKIT_UPDATE_SCREENSHOT") == "1":
        README_SCREENSHOT.write_bytes(png)
