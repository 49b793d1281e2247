"""`acm-lite serve --fleet ... --ui` in headless Chromium: the overview of a real fleet (three API
servers and a member whose API server is gone), a commit arriving while the page is open, an
object's drift, script injection through repository content, the preview of a commit the policies
block appearing and going away with its fix, object rows and object pages updating live, and the
token.

Set ACM_LITE_DASHBOARD_SCREENSHOTS=DIR to write dashboard-overview.png, dashboard-cluster.png,
dashboard-object.png and dashboard-preview.png there (docs/images holds the ones the documentation
shows)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import cm, ns, obj

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
TOKEN = "dashboard-test-token-8d1f0c2e"
NAMESPACE = "dashboard-e2e"
SYNC = "dashboard"
HOSTILE = "<img src=x onerror=window.__pwned=1>"
SCREENSHOTS = os.environ.get("ACM_LITE_DASHBOARD_SCREENSHOTS")

pytestmark = pytest.mark.skipif(
    not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


@dataclass
class Served:
    url: str
    repo: GitRepo
    fleet: dict[str, APIServer]
    process: subprocess.Popen[bytes]
    log: Path
    commits: list[str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gone_kubeconfig(path: Path) -> Path:
    """A member whose API server is not there: nothing listens on its port."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": f"https://127.0.0.1:{free_port()}"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def served(fleet: dict[str, APIServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("dashboard")
    repo = GitRepo(tmp / "git")
    first = repo.commit({"ns.yaml": ns(NAMESPACE), "a.yaml": cm("a", NAMESPACE)}, message="first")
    members = [
        {"name": name, "kubeconfig": server.kubeconfig, "labels": {"provider": name.split("-")[0]}}
        for name, server in fleet.items()
    ]
    members.append(
        {
            "name": "edge-gone",
            "kubeconfig": str(gone_kubeconfig(tmp / "gone.yaml")),
            "labels": {"provider": "gke"},
        }
    )
    fleet_file = tmp / "fleet.yaml"
    fleet_file.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "acm-lite.io/v1alpha1",
                "kind": "Fleet",
                "metadata": {"name": "dashboard"},
                "spec": {
                    "sync": {
                        "repo": repo.url,
                        "revision": "main",
                        "sourceFormat": "unstructured",
                        "name": SYNC,
                    },
                    "clusters": members,
                },
            }
        )
    )
    (tmp / "token").write_text(TOKEN + "\n")
    port = free_port()
    log = tmp / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "acm_lite",
                "serve",
                "--fleet",
                str(fleet_file),
                "--ui",
                "--ui-token-file",
                str(tmp / "token"),
                "--metrics-address",
                f"127.0.0.1:{port}",
                "--period",
                "1",
                "--log-format",
                "text",
                "--policy-bundle",
                "pod-security-baseline",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ACM_LITE_CACHE": str(tmp / "cache")},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=2).close()
            break
        except OSError:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
    try:
        yield Served(url, repo, fleet, process, log, [first])
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def status_of(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def cell(driver: object, sync_key: str, field: str) -> str:
    for holder in driver.find_elements(By.CSS_SELECTOR, "[data-sync]"):  # type: ignore[attr-defined]
        if holder.get_attribute("data-sync") == sync_key:
            return str(holder.find_element(By.CSS_SELECTOR, f'[data-field="{field}"]').text)
    return ""


def preview_box(driver: object, sync_key: str) -> object | None:
    for box in driver.find_elements(By.CSS_SELECTOR, "div[data-preview]"):  # type: ignore[attr-defined]
        if box.get_attribute("data-preview") == sync_key:
            return box
    return None


def preview_text(driver: object, sync_key: str, state: str = "ready") -> str:
    """The preview's whole text (collapsed diffs included) once it is in ``state``, else ''."""
    box = preview_box(driver, sync_key)
    if box is None or box.get_attribute("data-preview-state") != state:  # type: ignore[attr-defined]
        return ""
    return str(box.get_attribute("textContent"))  # type: ignore[attr-defined]


def row_commit(driver: object, name: str) -> str:
    for row in driver.find_elements(By.CSS_SELECTOR, "table.objects tr[data-object]"):  # type: ignore[attr-defined]
        if row.get_attribute("data-object") == f"/ConfigMap/{NAMESPACE}/{name}":
            return str(row.find_element(By.CSS_SELECTOR, 'td[data-col="commit"]').text)
    return ""


def inert(driver: object) -> None:
    """Nothing the repository said became an element or ran."""
    assert driver.execute_script("return document.querySelectorAll('img').length;") == 0  # type: ignore[attr-defined]
    assert driver.execute_script("return typeof window.__pwned;") == "undefined"  # type: ignore[attr-defined]


def secret(password: str) -> dict[str, object]:
    return obj("v1", "Secret", "creds", metadata={"namespace": NAMESPACE}, stringData={"password": password})


def privileged_pod(container: str) -> dict[str, object]:
    return obj(
        "v1",
        "Pod",
        "root-shell",
        metadata={"namespace": NAMESPACE},
        spec={
            "containers": [
                {"name": container, "image": "registry.acme.io/sh:1", "securityContext": {"privileged": True}}
            ]
        },
    )


def wait(driver: object, what: object, seconds: float = 45) -> None:
    WebDriverWait(driver, seconds, poll_frequency=0.3).until(what)


def shoot(driver: object, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SCREENSHOTS) / f"dashboard-{name}.png"))  # type: ignore[attr-defined]


def test_the_token_is_required(served: Served, browser: object) -> None:
    for path in ("/ui/", "/ui/api/fleet", "/ui/cluster/eks-prod"):
        code, body = status_of(served.url + path)
        assert code == 401 and b"eks-prod" not in body and b"dashboard-e2e" not in body, path
        code, _ = status_of(served.url + path, {"Authorization": "Bearer not-the-token"})
        assert code == 401
    code, body = status_of(served.url + "/ui/", {"Authorization": f"Bearer {TOKEN}"})
    assert code == 200 and b"eks-prod" in body

    browser.get(served.url + "/ui/")  # type: ignore[attr-defined]
    browser.delete_all_cookies()  # type: ignore[attr-defined]
    browser.get(served.url + "/ui/")  # type: ignore[attr-defined]
    assert "Unauthorized" in browser.page_source and "eks-prod" not in browser.page_source  # type: ignore[attr-defined]
    browser.get(served.url + "/ui/login")  # type: ignore[attr-defined]
    browser.find_element(By.ID, "token").send_keys("wrong")  # type: ignore[attr-defined]
    browser.find_element(By.ID, "sign-in").click()  # type: ignore[attr-defined]
    wait(browser, lambda d: "not accepted" in d.page_source)  # the answer to the form, once loaded
    assert "eks-prod" not in browser.page_source  # type: ignore[attr-defined]
    sign_in(browser, served)


def sign_in(browser: object, served: Served) -> None:
    """Sign in through the login form (its cookie then opens every page)."""
    browser.get(served.url + "/ui/login")  # type: ignore[attr-defined]
    browser.find_element(By.ID, "token").send_keys(TOKEN)  # type: ignore[attr-defined]
    browser.find_element(By.ID, "sign-in").click()  # type: ignore[attr-defined]
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "table.fleet"))


@pytest.fixture
def signed_in(served: Served, browser: object) -> object:
    """The browser, signed in whatever test ran before."""
    if not browser.get_cookies():  # type: ignore[attr-defined]
        sign_in(browser, served)
    return browser


@pytest.mark.usefixtures("signed_in")
def test_the_overview_shows_the_fleet_and_the_cluster_that_is_gone(served: Served, browser: object) -> None:
    browser.get(served.url + "/ui/")  # type: ignore[attr-defined]
    wait(browser, lambda d: cell(d, f"eks-prod/{SYNC}", "state") == "SYNCED")
    wait(browser, lambda d: cell(d, f"edge-gone/{SYNC}", "state") == "UNREACHABLE")
    for name in served.fleet:
        wait(browser, lambda d, n=name: cell(d, f"{n}/{SYNC}", "state") == "SYNCED")
        assert cell(browser, f"{name}/{SYNC}", "health") == "2 Current"
    assert cell(browser, f"edge-gone/{SYNC}", "reachable") == "no"
    assert cell(browser, f"eks-prod/{SYNC}", "reachable") == "yes"
    rows = browser.find_elements(By.CSS_SELECTOR, "table.fleet tbody tr")  # type: ignore[attr-defined]
    assert sorted(r.get_attribute("data-sync") for r in rows) == sorted(
        f"{n}/{SYNC}" for n in [*served.fleet, "edge-gone"]
    )
    assert "gke" in browser.page_source  # type: ignore[attr-defined]


@pytest.mark.usefixtures("signed_in")
def test_a_new_commit_shows_up_without_a_reload(served: Served, browser: object) -> None:
    browser.get(served.url + "/ui/")  # type: ignore[attr-defined]
    wait(browser, lambda d: cell(d, f"eks-prod/{SYNC}", "state") == "SYNCED")
    browser.execute_script("window.__sameDocument = 'yes';")  # type: ignore[attr-defined]
    commit = served.repo.commit(
        {"b.yaml": cm("b", NAMESPACE), "creds.yaml": secret("first-value")}, message="second"
    )
    served.commits.append(commit)
    for name in served.fleet:
        wait(browser, lambda d, n=name: cell(d, f"{n}/{SYNC}", "commit") == commit[:12])
        wait(browser, lambda d, n=name: cell(d, f"{n}/{SYNC}", "health") == "4 Current")
    assert browser.execute_script("return window.__sameDocument;") == "yes"  # type: ignore[attr-defined]
    shoot(browser, "overview")


@pytest.mark.usefixtures("signed_in")
def test_an_objects_health_drift_and_applied_commit(served: Served, browser: object) -> None:
    server = served.fleet["eks-prod"]
    cluster = Cluster.connect(server.kubeconfig)
    path = f"/api/v1/namespaces/{NAMESPACE}/configmaps/b"
    live = cluster.request("GET", path)
    live["data"] = {"k": "changed by hand"}
    cluster.request("PUT", path, body=live, query={"fieldManager": "intruder"})
    browser.get(served.url + "/ui/cluster/eks-prod")  # type: ignore[attr-defined]
    deadline = time.monotonic() + 45
    while "intruder" not in browser.page_source and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(1)
        browser.refresh()  # type: ignore[attr-defined]
    assert "intruder" in browser.page_source  # type: ignore[attr-defined]
    shoot(browser, "cluster")
    browser.find_element(By.LINK_TEXT, "b").click()  # type: ignore[attr-defined]
    text = browser.find_element(By.CSS_SELECTOR, "dl.object").text  # type: ignore[attr-defined]
    assert "intruder" in text and "Current" in text, text
    assert served.commits[-1] in text  # the commit that applied it
    shoot(browser, "object")


@pytest.mark.usefixtures("signed_in")
def test_script_injection_through_repository_content_is_inert(served: Served, browser: object) -> None:
    browser.get(served.url + "/ui/cluster/eks-prod")  # type: ignore[attr-defined]
    browser.execute_script("window.__sameDocument = 'yes';")  # type: ignore[attr-defined]
    bad = cm("bad", NAMESPACE)
    bad["metadata"]["labels"] = {"team": HOSTILE}
    served.repo.commit({"bad.yaml": bad}, message=f"hostile {HOSTILE}")
    wait(browser, lambda d: cell(d, f"eks-prod/{SYNC}", "state") == "ERROR")
    wait(browser, lambda d: "ACM1040" in d.find_element(By.CSS_SELECTOR, "ul.errors").text)
    assert browser.execute_script("return window.__sameDocument;") == "yes"  # type: ignore[attr-defined]

    def inert() -> None:
        assert HOSTILE in browser.find_element(By.CSS_SELECTOR, "ul.errors").text  # type: ignore[attr-defined]
        assert browser.execute_script("return document.querySelectorAll('img').length;") == 0  # type: ignore[attr-defined]
        assert browser.execute_script("return typeof window.__pwned;") == "undefined"  # type: ignore[attr-defined]

    inert()  # drawn by the page's script
    browser.refresh()  # type: ignore[attr-defined]
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "ul.errors li"))
    inert()  # drawn by the server
    pending = browser.find_element(By.CSS_SELECTOR, ".pending").text  # type: ignore[attr-defined]
    assert f"acm-lite preview --base {served.commits[-1]} --head" in pending
    # the preview of the blocked commit: the label's vet error it introduces, as text; no plan
    wait(browser, lambda d: "ACM1040" in preview_text(d, f"eks-prod/{SYNC}"))
    text = preview_text(browser, f"eks-prod/{SYNC}")
    assert HOSTILE in text and "no plan: ACM1040" in text, text
    inert()
    browser.get(served.url + "/ui/")  # type: ignore[attr-defined]
    assert cell(browser, f"eks-prod/{SYNC}", "state") == "ERROR"
    assert browser.execute_script("return typeof window.__pwned;") == "undefined"  # type: ignore[attr-defined]
    assert served.process.poll() is None, served.log.read_text()[-4000:]


@pytest.mark.usefixtures("signed_in")
def test_the_preview_of_a_blocked_commit_and_its_fix_arrive_live(served: Served, browser: object) -> None:
    key = f"eks-prod/{SYNC}"
    browser.get(served.url + "/ui/cluster/eks-prod")  # type: ignore[attr-defined]
    browser.execute_script("window.__sameDocument = 'yes';")  # type: ignore[attr-defined]
    # the label error goes; a privileged Pod (a container named like markup) and a changed
    # ConfigMap whose new value is markup come in: the policies block the commit
    blocked = served.repo.commit(
        {
            "bad.yaml": None,
            "pod.yaml": privileged_pod(HOSTILE),
            "a.yaml": cm("a", NAMESPACE, data={"note": HOSTILE}),
            "creds.yaml": secret("second-value-hunter2"),
        },
        message=f"privileged {HOSTILE}",
    )
    wait(browser, lambda d: cell(d, key, "commit") == blocked[:12])
    wait(browser, lambda d: "ACM3100" in preview_text(d, key), 90)
    text = preview_text(browser, key)
    assert f"container {HOSTILE} is privileged" in text, text
    assert f"Pod {NAMESPACE}/root-shell" in text and f"ConfigMap {NAMESPACE}/a" in text, text
    diffs = browser.find_elements(By.CSS_SELECTOR, 'ul[data-section="change"] pre')  # type: ignore[attr-defined]
    assert any(HOSTILE in str(d.get_attribute("textContent")) for d in diffs)
    assert f"Secret {NAMESPACE}/creds" in text and "***" in text  # masked as acm-lite preview masks it
    assert "hunter2" not in text and "first-value" not in text
    assert "hunter2" not in browser.page_source  # type: ignore[attr-defined]
    assert cell(browser, key, "synced") == served.commits[-1][:12]  # still the applied one
    assert browser.execute_script("return window.__sameDocument;") == "yes"  # type: ignore[attr-defined]
    inert(browser)
    browser.find_element(By.CSS_SELECTOR, 'ul[data-section="change"] summary').click()  # type: ignore[attr-defined]
    browser.execute_script("arguments[0].scrollIntoView();", preview_box(browser, key))  # type: ignore[attr-defined]
    shoot(browser, "preview")
    browser.refresh()  # type: ignore[attr-defined]
    wait(browser, lambda d: "ACM3100" in preview_text(d, key))  # drawn by the server this time
    inert(browser)

    browser.execute_script("window.__sameDocument = 'yes';")  # type: ignore[attr-defined]
    fixed = served.repo.commit(
        {
            "pod.yaml": None,
            "a.yaml": cm("a", NAMESPACE, data={"note": "fixed"}),
            "creds.yaml": secret("fixed"),
        }
    )
    served.commits.append(fixed)
    wait(browser, lambda d: row_commit(d, "a") == fixed[:12], 90)
    wait(browser, lambda d: cell(d, key, "state") == "SYNCED")
    box = preview_box(browser, key)
    assert box is not None and box.get_attribute("textContent") == ""  # type: ignore[attr-defined]
    assert cell(browser, key, "synced") == fixed[:12]
    assert browser.execute_script("return window.__sameDocument;") == "yes"  # type: ignore[attr-defined]
    inert(browser)


@pytest.mark.usefixtures("signed_in")
def test_an_object_page_follows_its_object_live(served: Served, browser: object) -> None:
    browser.get(served.url + f"/ui/object/eks-prod/{SYNC}/_/ConfigMap/{NAMESPACE}/a")  # type: ignore[attr-defined]
    field = 'dl.object dd[data-field="commit"]'
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, field).text == served.commits[-1])
    browser.execute_script("window.__sameDocument = 'yes';")  # type: ignore[attr-defined]
    commit = served.repo.commit({"a.yaml": cm("a", NAMESPACE, data={"note": "again"})})
    served.commits.append(commit)
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, field).text == commit, 90)
    assert browser.find_element(By.CSS_SELECTOR, 'dd[data-field="status"]').text == "Current"  # type: ignore[attr-defined]
    assert browser.execute_script("return window.__sameDocument;") == "yes"  # type: ignore[attr-defined]
