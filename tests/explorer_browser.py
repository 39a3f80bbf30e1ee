"""The chain browser in a real headless Chromium, driven over WebDriver (selenium with the
Debian chromedriver given explicitly: nothing is downloaded).

Usage: explorer_browser.py FIXTURE_JSON [SCREENSHOT_DIR]

FIXTURE_JSON names what the spawned daemon holds (see tests/explorer.rs). Every page is loaded
with JavaScript turned off in the browser: the pages must work without it. With SCREENSHOT_DIR,
each page kind is also captured at desktop (1280 px) and phone (390 px) widths.
Exits non-zero with a message on the first failed assertion.
"""

import json
import os
import sys
from urllib.parse import quote, urlparse

os.environ.setdefault("SE_OFFLINE", "true")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

fx = json.load(open(sys.argv[1]))
shots = sys.argv[2] if len(sys.argv) > 2 else None
base = fx["base"]

opts = webdriver.ChromeOptions()
opts.binary_location = os.environ.get("SPARKID_CHROMIUM", "/usr/bin/chromium")
for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,900", "--hide-scrollbars"]:
    opts.add_argument(arg)
# Pages must work without JavaScript: the browser runs none of theirs.
opts.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(
    service=Service(os.environ.get("SPARKID_CHROMEDRIVER", "/usr/bin/chromedriver")),
    options=opts,
)
# Pages that answer an error status on purpose: their load is logged as a console error.
expected_errors = 0


def fail(message):
    print(f"FAIL: {message} (at {driver.current_url})")
    driver.quit()
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def console_errors():
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def visit(path, error_page=False):
    driver.get(base + path)
    errors = console_errors()
    if error_page:
        # The only console error an error page may cause is its own status.
        errors = [e for e in errors if "the server responded with a status of 4" not in e["message"]]
    check(not errors, f"console errors on {path}: {errors}")
    check(not driver.find_elements(By.TAG_NAME, "script"), f"{path} carries a script")


def path_now():
    url = urlparse(driver.current_url)
    return url.path + (("?" + url.query) if url.query else "")


def text(selector):
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    check(found, f"no element {selector}")
    return found[0].text


def rows(selector):
    return driver.find_elements(By.CSS_SELECTOR, f"{selector} tbody tr")


def left(page):
    """Whether the browser has left the document `page` belongs to.

    Chromedriver reports a node of a document that is gone either as a stale element or, when
    the new document is mid-load under a busy machine, as a plain error that the node "does not
    belong to the document": both mean the page changed. Any other error is a real failure.
    """

    def check(_driver):
        try:
            page.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise

    return check


def navigate(action):
    """Runs `action` (a click) and waits until the browser has left the current page."""
    page = driver.find_element(By.TAG_NAME, "html")
    action()
    WebDriverWait(driver, 10).until(left(page))


def click(element):
    before = driver.current_url
    navigate(element.click)
    check(driver.current_url != before, "a link led nowhere")
    errors = console_errors()
    check(not errors, f"console errors after following a link: {errors}")


def search(query):
    """Types into the search box of the current page and submits the form."""
    box = driver.find_element(By.CSS_SELECTOR, "form.search input[name=q]")
    box.clear()
    box.send_keys(query)
    navigate(driver.find_element(By.CSS_SELECTOR, "form.search button").click)
    errors = [e for e in console_errors() if "status of 404" not in e["message"]]
    check(not errors, f"console errors after searching {query!r}: {errors}")


def shot(name):
    if not shots:
        return
    for label, width, height in [("desktop", 1280, 900), ("phone", 390, 844)]:
        driver.set_window_size(width, height)
        driver.refresh()
        driver.save_screenshot(os.path.join(shots, f"{name}-{label}.png"))
    driver.set_window_size(1280, 900)
    driver.refresh()
    # Reloading an error page logs its status again; anything else is a failure.
    errors = [e for e in console_errors() if "the server responded with a status of 4" not in e["message"]]
    check(not errors, f"console errors while capturing {name}: {errors}")


# Home: head, counts, recent blocks and transactions.
visit("/explorer/")
check("Chain" in text("h1"), "the home page names its chain")
head = int(text("#head-height"))
check(head >= fx["min_height"], f"head {head} below {fx['min_height']}")
check(int(text("#count-dids")) == 3, "the home page counts the DIDs")
check(int(text("#count-namespaces")) == 5, "the home page counts the namespaces")
check(int(text("#count-bindings")) == 3, "the home page counts the bindings")
check(len(rows("#recent-blocks")) >= 5, "recent blocks are listed")
check(len(rows("#recent-transactions")) >= 5, "recent transactions are listed")
check(driver.find_element(By.CSS_SELECTOR, "#recent-blocks tbody tr td a").text == str(head),
      "the newest block comes first")
shot("home")

# Links: home → newest block → its first transaction → back to the block.
click(driver.find_element(By.CSS_SELECTOR, "#recent-blocks tbody tr td a"))
check(path_now() == f"/explorer/block/{head}", f"the block link leads to block {head}")
check(text("h1") == f"Block {head}", "the block page is titled")
check("badge ok" in driver.find_element(By.CSS_SELECTOR, "#certificate .badge").get_attribute("class"),
      "the commit certificate holds")
check(len(rows("#certificate")) >= 1, "the certificate's signers are listed")
block_hash = text("#block-hash")
click(driver.find_element(By.CSS_SELECTOR, "#transactions tbody tr td a"))
check(path_now().startswith("/explorer/tx/"), "the transaction link leads to its page")
check(text("#outcome") == "committed", "the transaction's outcome is shown")
tx_hash = text("#tx-hash")
click(driver.find_element(By.ID, "tx-block"))
check(path_now() == f"/explorer/block/{head}", "the transaction links back to its block")

# The bind transaction, by its hash; its page links to the identifier it binds.
visit(f"/explorer/tx/{fx['bind_tx']}")
check(text("#operation") == "bind", "the bind transaction's operation")
shot("transaction")
subject_links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "a.subject")]
check(any("/explorer/id/vaa/" in h for h in subject_links), f"the bind links to its identifier: {subject_links}")

# A block page by hash, with a screenshot.
visit(f"/explorer/block/{block_hash}")
check(text("h1") == f"Block {head}", "a block is found by its hash")
visit(f"/explorer/block/{fx['bind_height']}")
shot("block")

# Search, one kind of input after another, from the search box.
visit("/explorer/")
cases = [
    (fx["subject"], "/explorer/did/" + quote(fx["subject"], safe="")),
    (fx["subject"].removeprefix("did:bid:"), "/explorer/did/" + quote(fx["subject"], safe="")),
    (fx["sub_did"], "/explorer/did/" + quote(fx["sub_did"], safe="")),
    (tx_hash, f"/explorer/tx/{tx_hash}"),
    (block_hash, f"/explorer/block/{head}"),
    (str(fx["bind_height"]), f"/explorer/block/{fx['bind_height']}"),
    (fx["vaa"], "/explorer/id/vaa/" + quote(fx["vaa"], safe="")),
    ("vaa:" + fx["vaa"], "/explorer/id/vaa/" + quote(fx["vaa"], safe="")),
    (fx["handle"], "/explorer/id/handle/" + quote(fx["handle"], safe="")),
    (fx["dns"], "/explorer/id/dns/" + quote(fx["dns"], safe="")),
    (fx["ac"], "/explorer/subchain/" + fx["ac"]),
]
for query, expected in cases:
    search(query)
    check(path_now() == expected, f"searching {query!r} leads to {expected}, not {path_now()}")

# An input that names nothing: the page says how it was read and that nothing was found.
search("nothing-here.example.org")
check(text("#not-found").startswith("Nothing"), "an unknown input is reported")
understood = text("#understood")
check("DNS identifier" in understood and "not found" in understood,
      f"the page says what was understood: {understood}")
shot("search")

# The DID page: verified badge, history linking to blocks, bound identifiers.
visit("/explorer/did/" + quote(fx["subject"], safe=""))
badge = driver.find_element(By.ID, "verified")
check("ok" in badge.get_attribute("class") and "verified" in badge.text, f"the verified badge: {badge.text}")
history = rows("#history")
check(len(history) == 2, f"the DID has two versions, shown {len(history)}")
check([r.find_elements(By.TAG_NAME, "td")[1].text for r in history] == ["update", "create"],
      "versions newest first")
bound = text("#bound")
for identifier in [fx["vaa"], fx["handle"], fx["dns"]]:
    check(identifier in bound, f"{identifier} is listed as bound: {bound}")
check("confirmed by the DID" in bound, "the linked identifier shows as confirmed")
check(fx["subject"] in text("#document"), "the current document is shown")
shot("did")
# A version links to its block.
history = rows("#history")
click(history[1].find_element(By.CSS_SELECTOR, "td a"))
check(path_now().startswith("/explorer/block/"), "a version links to its block")

# A deactivated DID.
visit("/explorer/did/" + quote(fx["gone"], safe=""))
check(text("#status") == "deactivated", "a deactivated DID says so")

# A sub-chain DID, from the hosted sub-chain's ledger, its versions linking to that chain's blocks.
visit("/explorer/did/" + quote(fx["sub_did"], safe=""))
check("ok" in driver.find_element(By.ID, "verified").get_attribute("class"), "the sub-chain DID verifies")
link = driver.find_element(By.CSS_SELECTOR, "#history tbody tr td a").get_attribute("href")
check(f"chain={fx['ac']}" in link, f"a sub-chain version links to the sub-chain's block: {link}")
click(driver.find_element(By.CSS_SELECTOR, "#history tbody tr td a"))
check("of sub-chain" in text("h1"), "the sub-chain's block page")

# Identifier → its namespace → a binding → the DID.
visit("/explorer/id/vaa/" + quote(fx["vaa"], safe=""))
check(text("#bound-did") == fx["subject"], "the identifier names its DID")
shot("identifier")
click(driver.find_element(By.CSS_SELECTOR, "#namespace a"))
check(path_now() == "/explorer/namespace/vaa/" + quote(fx["vaa_ns"], safe=""), "the identifier links to its namespace")
check(text("#owner") == fx["owner"], "the namespace's owner")
check(fx["vaa"] in text("#bindings"), "the namespace lists its binding")
shot("namespace")
click(driver.find_element(By.CSS_SELECTOR, "#bindings tbody tr td.hash a"))
check(path_now() == "/explorer/did/" + quote(fx["subject"], safe=""), "a binding links to its DID")

# Handle and DNS identifiers and namespaces too.
for kind, identifier, ns in [("handle", fx["handle"], fx["handle_ns"]), ("dns", fx["dns"], fx["dns_ns"])]:
    visit(f"/explorer/id/{kind}/" + quote(identifier, safe=""))
    check(text("#bound-did") == fx["subject"], f"the {kind} identifier names its DID")
    click(driver.find_element(By.CSS_SELECTOR, "#namespace a"))
    check(identifier in text("#bindings"), f"the {kind} namespace lists its binding")

# Every kind has a namespace list, the newer kinds included; each list pages by cursor.
visit("/explorer/namespaces/vaa")
kinds = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "p.kinds a")] + [text("p.kinds strong")]
for label in ["VAA", "Handle", "DNS", "AC code", "OID", "GS1", "Ecode"]:
    check(label in kinds, f"the {label} kind is listed: {kinds}")
shot("namespaces")
visit("/explorer/namespaces/vaa?limit=1")
click(driver.find_element(By.CSS_SELECTOR, "a[rel=next]"))
check("after=" in path_now(), "the next page of namespaces is a cursor")

# The sub-chain: delegation, endpoints, anchors.
visit("/explorer/subchain/" + fx["ac"])
check(fx["endpoint"] in text("#endpoints"), "the sub-chain's resolver endpoint")
check(len(rows("#anchors")) >= 1, "the sub-chain's anchors")
shot("subchain")
click(driver.find_element(By.CSS_SELECTOR, "#hosted a"))
check("of sub-chain" in text("h1"), "the hosted sub-chain's head block")

# Blocks and transactions page by cursor.
visit("/explorer/blocks?limit=2")
check(len(rows("table.blocks")) == 2, "two blocks a page")
click(driver.find_element(By.CSS_SELECTOR, "a[rel=next]"))
check(path_now() == f"/explorer/blocks?before={head - 1}", f"the older page's cursor: {path_now()}")
visit("/explorer/transactions?limit=2")
first_page = [r.text for r in rows("table.txs")]
click(driver.find_element(By.CSS_SELECTOR, "a[rel=next]"))
check("before=" in path_now(), "the next page of transactions is a cursor")
next_page = [r.text for r in rows("table.txs")]
check(next_page and not set(next_page) & set(first_page), "the next page goes on where the first ended")

# Bad input: an error page, in HTML, that says what was wrong.
visit("/explorer/block/not-a-block", error_page=True)
check(text("h1") == "400 Bad Request", "a malformed block id is a 400 page")
check("neither a block height nor a block hash" in text(".problem"), "the 400 page says why")
visit("/explorer/did/" + quote(fx["unknown_did"], safe=""), error_page=True)
check(text("h1").startswith("4"), "an unknown DID is an error page")
shot("error")
visit("/explorer/did/" + quote('<script>alert(1)</script>', safe=""), error_page=True)
check(not driver.find_elements(By.TAG_NAME, "script"), "input is escaped, never markup")
check("<script>" in text(".problem"), "the input is shown as text")

driver.quit()
print("ok")
