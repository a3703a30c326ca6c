"""The sandbox's pages in a real browser (Debian's headless Chromium through
Selenium): Flower lists every pool and shows a task sent over the app's API,
and the Django admin lists the periodic tasks beat runs. Run against a
running sandbox by `make sandbox-test`; screenshots go to
artifacts/screenshots/ (CI keeps them)."""

import base64
import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
VAULT = ROOT / "inventories/sandbox/group_vars/all/vault.yml"
SHOTS = ROOT / "artifacts/screenshots"
WEB = f"http://127.0.0.1:{os.environ.get('SANDBOX_WEB_PORT', '8000')}"
FLOWER = f"http://127.0.0.1:{os.environ.get('SANDBOX_FLOWER_PORT', '5555')}"
# files/sandbox_prove.py: how the sandbox script reads the same secrets.
sys.path.insert(0, str(ROOT / "files"))
from sandbox_prove import read_vault  # noqa: E402

# inventories/sandbox: its pools and its host's name.
NODES = ("default@sandbox1", "io@sandbox1")


@pytest.fixture(scope="module")
def secrets():
    return read_vault(VAULT)


@pytest.fixture
def browser():
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1400,1000", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    # The driver from Debian's chromium-driver: Selenium downloads nothing.
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def shows(driver, *texts, timeout=20):
    """Wait until the page's text holds every one of `texts` (its textContent:
    narrow table cells wrap long names in the rendered text)."""
    WebDriverWait(driver, timeout).until(
        lambda d: all(text in d.execute_script("return document.body.textContent") for text in texts))


def send_task(token):
    """POST /api/tasks/add/ to the sandbox's API; returns the task's id."""
    request = urllib.request.Request(  # noqa: S310 (WEB is loopback http)
        f"{WEB}/api/tasks/add/", data=json.dumps({"args": [20, 22]}).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())["task_id"]


def test_flower_lists_every_pool_and_shows_a_task(browser, secrets):
    token = base64.b64encode(f"admin:{secrets['vault_flower_password']}".encode()).decode()
    # Basic auth on every request the pages make, their own XHRs included.
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
    browser.get(f"{FLOWER}/workers")
    shows(browser, *NODES)
    browser.save_screenshot(str(SHOTS / "flower-workers.png"))
    task_id = send_task(secrets["vault_app_api_token"])
    browser.get(f"{FLOWER}/tasks")
    shows(browser, task_id)
    browser.get(f"{FLOWER}/task/{task_id}")
    shows(browser, "jobs.tasks.add", "SUCCESS", "42")
    browser.save_screenshot(str(SHOTS / "flower-task.png"))


def test_flower_refuses_a_browser_without_credentials(browser):
    browser.get(f"{FLOWER}/workers")
    assert not any(node in browser.page_source for node in NODES)


def test_django_admin_lists_the_periodic_tasks(browser, secrets):
    browser.get(f"{WEB}/admin/login/?next=/admin/django_celery_beat/periodictask/")
    browser.find_element(By.ID, "id_username").send_keys("admin")
    browser.find_element(By.ID, "id_password").send_keys(secrets["vault_admin_password"])
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    shows(browser, "Select periodic task to change", "heartbeat")
    # The admin's stylesheet loaded (whitenoise serves the collected static files).
    assert browser.execute_script(
        "return getComputedStyle(document.getElementById('header')).backgroundColor") not in ("", "rgba(0, 0, 0, 0)")
    browser.save_screenshot(str(SHOTS / "admin-periodic-tasks.png"))
