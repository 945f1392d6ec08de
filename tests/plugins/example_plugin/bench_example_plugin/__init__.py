"""Registry data only: importing this must stay cheap (no torch), so `bench methods` stays fast."""

from bench.methods import MethodEntry, MethodSpec

ENTRIES = [
    MethodEntry(
        MethodSpec(
            name="example-sharpen",
            task="any",
            in_size=None,
            out_size=None,
            licence="MIT",
            description="unsharp masking with a learnable strength (example plugin)",
        ),
        factory="bench_example_plugin.model:create",
    )
]
