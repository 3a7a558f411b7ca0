"""Records name the CPU they were measured on: its model and the flags that decide matrix-product speed."""

from experiments.provenance import cpu_description


def test_cpu_description_names_the_model_and_its_matrix_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
                    "flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni amx_bf16 amx_tile\n\n"
                    "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni amx_bf16\n")
    assert cpu_description(info) == "Intel(R) Xeon(R) Platinum 8480+ (avx2 fma avx512f avx512_vnni amx_bf16)"
    info.write_text("model name\t: Old CPU\nflags\t\t: fpu sse2\n")
    assert cpu_description(info) == "Old CPU"


def test_cpu_description_is_none_where_the_cpu_cannot_be_read(tmp_path):
    assert cpu_description(tmp_path / "missing") is None
    (tmp_path / "no_model").write_text("flags\t\t: avx2\n")
    assert cpu_description(tmp_path / "no_model") is None
