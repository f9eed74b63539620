"""After the conversation: the post-call satisfaction survey, scores on the work order."""

from __future__ import annotations

from ivr.flows.hotline.context import Call, Shared


async def survey(hotline: Shared, call: Call) -> None:
    """CSAT 1-5, then NPS 0-10 (two keys: 1 then 0 for 10); then goodbye."""
    session = call.session
    config = hotline.config().menus.survey
    if not config.enabled:
        await session.stream_file(hotline.prompt(call, "goodbye"))
        return
    call.stage = "survey"
    wait_ms = int(config.timeout_s * 1000)
    csat = await session.get_data(hotline.prompt(call, config.csat_prompt), wait_ms, 1)
    if csat and csat in "12345":
        await hotline.record(call, "update", "caller", csat=int(csat))
        nps = await session.get_data(hotline.prompt(call, config.nps_prompt), wait_ms, 2)
        if nps and nps.isdigit() and int(nps) <= 10:
            await hotline.record(call, "update", "caller", nps=int(nps))
    await session.stream_file(hotline.prompt(call, "goodbye"))
