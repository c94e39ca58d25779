"""The committed fuzz corpus, replayed through every target of tasker-fuzz in an ordinary build:
each input that once mattered (a seed, or a crash since fixed) keeps passing."""
import os
import subprocess

import pytest

from conftest import ROOT, binary

TARGETS = ["deframer", "http2", "requests", "schema", "template", "pattern", "stored-json"]


@pytest.mark.parametrize("target", TARGETS)
def test_the_corpus_replays_cleanly(target):
    corpus = os.path.join(ROOT, "fuzz", "corpus", target)
    inputs = os.listdir(corpus)
    assert inputs, "no seed inputs for %s" % target
    done = subprocess.run([binary("tasker-fuzz"), target, corpus], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "%s: %d inputs replayed" % (target, len(inputs))


def test_an_unknown_target_is_a_usage_error():
    done = subprocess.run([binary("tasker-fuzz"), "nonsense"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 64 and "targets: deframer" in done.stderr
