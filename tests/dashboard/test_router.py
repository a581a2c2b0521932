"""The dashboard router serves the page, its assets and its config, with strict headers."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from spm.dashboard import dashboard_router
from spm.dashboard.router import ASSETS, STATIC


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://spm")


async def test_page_assets_and_config_under_a_prefix() -> None:
    app = FastAPI()
    app.include_router(dashboard_router(apis={"alerts": "http://alerts.internal:8004/"}))
    async with _client(app) as client:
        redirect = await client.get("/dashboard")
        assert redirect.status_code == 308
        assert redirect.headers["location"] == "/dashboard/"
        page = await client.get("/dashboard/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="assets/app.js">' in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "connect-src 'self' http://alerts.internal:8004" in csp
        assert page.headers["cache-control"] == "no-store"
        for name, media in ASSETS.items():
            asset = await client.get(f"/dashboard/assets/{name}")
            assert asset.status_code == 200, name
            assert asset.headers["content-type"].startswith(media)
            assert asset.content == (STATIC / name).read_bytes()
        config = (await client.get("/dashboard/config.json")).json()
        assert config["apis"]["alerts"] == "http://alerts.internal:8004"
        assert config["apis"]["indicators"] == ""


async def test_only_listed_assets_are_served() -> None:
    app = FastAPI()
    app.include_router(dashboard_router(prefix=""))
    async with _client(app) as client:
        assert (await client.get("/")).status_code == 200
        for path in ("/assets/index.html", "/assets/..%2Frouter.py", "/assets/nope.js"):
            assert (await client.get(path)).status_code == 404, path


def test_unknown_api_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown API names"):
        dashboard_router(apis={"billing": "http://x"})


def test_every_module_import_is_a_served_asset() -> None:
    """The page loads ES modules by relative path: each must be in the whitelist."""
    import re

    for name in ASSETS:
        if name.endswith(".js"):
            text = (STATIC / name).read_text()
            for imported in re.findall(r'from "\./([^"]+)"', text):
                assert imported in ASSETS, f"{name} imports {imported}, which is not served"
