"""Run INSIDE the throwaway linuxforhealth-x12 venv (it needs pydantic < 2): parse an X12
270 or 271 into that library's 5010 models and print, as JSON, the model names and the
TRN trace numbers of each subscriber, or the error it raised."""

import json
import sys

from linuxforhealth.x12.io import X12ModelReader


def benefits(subscriber):
    """EB01 of each 2110C loop (a 270's single inquiry loop has none)."""
    loops = (subscriber.get("loop_2100c") or {}).get("loop_2110c") or []
    if isinstance(loops, dict):
        loops = [loops]
    return [loop["eb_segment"]["eligibility_benefit_information"] for loop in loops if loop.get("eb_segment")]


try:
    with open(sys.argv[1]) as f, X12ModelReader(f.read()) as reader:
        found = []
        for model in reader.models():
            data = model.dict()
            for source in data["loop_2000a"]:
                for receiver in source["loop_2000b"]:
                    for subscriber in receiver["loop_2000c"]:
                        found.append(
                            {
                                "model": type(model).__name__,
                                "traces": [
                                    t["reference_identification_1"] for t in subscriber.get("trn_segment") or []
                                ],
                                "benefits": benefits(subscriber),
                            }
                        )
    print(json.dumps({"ok": True, "subscribers": found}))
except Exception as exc:  # the test shows what the parser objected to
    print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:2000]}"}))
