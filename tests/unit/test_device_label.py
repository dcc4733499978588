"""result.json's device names the machine: the CPU model, its family and model numbers, and the vector
extensions the floating point depends on (runner/device.py), read from /proc/cpuinfo's text."""

import torch

from runner.device import cpu_description, device_label

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw amx_bf16 avx512_fp16

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
"""
EPYC = "cpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC Processor\nflags\t\t: sse2 avx avx2 fma\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm sve\nHardware\t: Neoverse\n"


def test_the_cpu_description_names_the_model_and_its_vector_extensions():
    level = torch.backends.cpu.get_cpu_capability()
    expected = f"Intel(R) Xeon(R) Platinum 8480+ (family 6, model 143), {level} (avx2 avx512f avx512_fp16 amx_bf16)"
    assert cpu_description(XEON) == expected
    assert cpu_description(EPYC) == f"AMD EPYC Processor (family 25, model 1), {level} (avx2)"
    assert cpu_description(ARM) == f"Neoverse, {level} (asimd sve)"


def test_two_machines_that_differ_in_avx512_get_different_labels():
    assert cpu_description(XEON) != cpu_description(EPYC)
    assert "none listed" in cpu_description("model name\t: Old CPU\nflags\t\t: fpu sse2\n")


def test_the_cpu_device_label_gives_threads_and_this_machines_cpu():
    label = device_label(torch.device("cpu"))
    assert label.startswith(f"cpu ({torch.get_num_threads()} threads; ") and label.endswith(")")
    assert cpu_description() in label
