"""Regular-expression rules: time to accept (or refuse) a pattern and to evaluate it, against a plain one.

    PYTHONPATH=layers/crm:. python -m tests.bench.regex_rules [--repeat 200]

Each pattern is validated as a scoring rule's value would be when the rule is saved (compiled afresh) and
evaluated on a 255-character near miss (the longest text a lead field holds), the case where a
backtracking engine explores every way to split the value. Figures are milliseconds and ratios to the
baseline pattern `platform` in the same run; every figure must stay in milliseconds.
"""

import argparse
import time
from collections.abc import Callable

import re2
from crm.conditions import Operator, check_value, compile_matcher, compiled_pattern

BASELINE = "platform"
PATTERNS = [r"(a|a)*b", r"(a|aa)*b", r"\w*\w*\w*\w*\w*\w*x", r"(a+)+$", r"(a)\1", r"vp(?= of)"]
NEAR_MISS = "a" * 254 + "!"


def _best_ms(action: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _accept(pattern: str) -> str:
    # Time the compile a save does, not a cache hit (ours, and google-re2's own cache of compiled patterns).
    compiled_pattern.cache_clear()
    re2._Regexp._make.cache_clear()
    try:
        check_value(Operator.REGEX, pattern)
    except ValueError:
        return "refused"
    return "accepted"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    repeat = parser.parse_args().repeat
    base_accept = _best_ms(lambda: _accept(BASELINE), repeat)
    base_match = compile_matcher(Operator.REGEX, BASELINE)
    base_eval = _best_ms(lambda: base_match(NEAR_MISS), repeat)
    print(f"baseline {BASELINE!r}: accept {base_accept:.3f} ms, evaluate {base_eval:.4f} ms")
    print(f"{'pattern':28} {'verdict':9} {'accept ms':>10} {'x base':>7} {'eval ms':>9} {'x base':>7}")
    for pattern in PATTERNS:
        verdict = _accept(pattern)
        accept_ms = _best_ms(lambda pattern=pattern: _accept(pattern), repeat)
        if verdict == "accepted":
            matcher = compile_matcher(Operator.REGEX, pattern)
            eval_ms = _best_ms(lambda matcher=matcher: matcher(NEAR_MISS), repeat)
            evaluated = f"{eval_ms:9.4f} {eval_ms / base_eval:7.1f}"
        else:
            evaluated = f"{'-':>9} {'-':>7}"
        print(f"{pattern:28} {verdict:9} {accept_ms:10.3f} {accept_ms / base_accept:7.1f} {evaluated}")


if __name__ == "__main__":
    main()
