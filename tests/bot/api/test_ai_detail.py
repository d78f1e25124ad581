"""REST ticket detail with AI suggestions (`?ai=true`): source and confidence, the ticket's own customer only
unless the workspace allows more, nothing without asking, and another workspace's key gets a 404."""

from __future__ import annotations

from core.context import Actor
from tests.bot.api.conftest import Api, assert_problem
from tests.core.ai.test_service import seed


async def test_ticket_detail_with_ai_suggestions(api: Api):
    await seed(api.container.db, api.ws)
    await api.container.ai.train(api.ws)
    plain = (await api.get("/tickets/9003")).json()
    assert "ai" not in plain
    body = (await api.get("/tickets/9003?ai=true")).json()
    ai = body["ai"]
    assert "trained on this workspace" in ai["source"]
    assert ai["category"]["action"] in ("suggest", "low_confidence") and 0 < ai["category"]["confidence"] <= 1
    numbers = [s["number"] for s in ai["similar"]]
    assert numbers[0] == 9001 and 9002 not in numbers and not ai["cross_customer"]
    assert ai["resolutions"][0] == {"text": "Raised the VPN keepalive to 60 s.",
                                    "attribution": ai["resolutions"][0]["attribution"]}
    assert ai["resolutions"][0]["attribution"].startswith("from #9001")
    assert "GLOBEX-ONLY" not in str(body)

    await api.container.ai.set_setting(Actor.system(api.ws), "cross_customer", "on")
    ai = (await api.get("/tickets/9003?ai=true")).json()["ai"]
    assert {9001, 9002} <= {s["number"] for s in ai["similar"]} and ai["cross_customer"]

    assert_problem(await api.get("/tickets/9003?ai=true", "other"), 404)


async def test_ticket_detail_carries_the_risk_chip_above_the_threshold(api: Api):
    from tests.core.ai.test_risk import seed as seed_risk

    await seed_risk(api.container.db, api.ws)
    await api.container.ai.risk.train(api.ws)
    await api.container.ai.risk.score(api.ws)
    risky = (await api.get("/tickets/1001?ai=true")).json()["ai"]
    assert risky["risk"]["score"] >= 0.6 and risky["risk"]["threshold"] == 0.6 and risky["risk"]["reasons"]
    calm = (await api.get("/tickets/1002?ai=true")).json()["ai"]
    assert calm is None or calm["risk"] is None


async def test_ai_settings_and_model_status_over_rest(api: Api):
    """The third surface of AI settings (beside chat and the CLI): read with any key, changed with an admin key
    only, parsed and refused as in chat, and scoped to the key's workspace."""
    body = (await api.get("/ai/settings")).json()
    assert body["settings"]["fill_threshold"] == 0.8 and body["settings"]["auto_apply"] is False
    assert body["model"] is None and "fill an empty category" in body["help"]["fill_threshold"]
    await seed(api.container.db, api.ws)
    await api.container.ai.train(api.ws)
    model = (await api.get("/ai/settings")).json()["model"]
    assert model["version"] == 1 and model["trained_on"] > 0 and "holdout_accuracy" in model["metrics"]

    assert_problem(await api.put("/ai/settings/fill_threshold", {"value": "0.9"}, "write"), 403)
    r = await api.put("/ai/settings/fill_threshold", {"value": "90%"}, "admin")
    assert r.status_code == 200 and r.json()["settings"]["fill_threshold"] == 0.9
    assert (await api.container.ai.settings(api.ws))["fill_threshold"] == 0.9
    bad = assert_problem(await api.put("/ai/settings/fill_threshold", {"value": "lots"}, "admin"), 422)
    assert "0.8" in bad["detail"] + bad["hint"]
    assert (await api.container.ai.settings(api.ws))["fill_threshold"] == 0.9  # nothing changed
    assert (await api.put("/ai/settings/no_such_thing", {"value": "on"}, "admin")).status_code == 422
    assert (await api.container.ai.settings(api.other_ws))["fill_threshold"] == 0.8  # another workspace untouched
