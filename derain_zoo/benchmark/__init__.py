"""Cost of a model under a stated protocol: params, GFLOPs, latency, memory, matmul-rate ratio.

``derain-zoo benchmark --model estinet`` (or ``--all``) prints one row per model. FLOPs come from
``torch.utils.flop_counter`` over one forward of the whole clip and are divided by the number of
output frames; latency is the median over repeated runs after warm-up; the machine's fp32 matmul
rate is measured in the same run, so the achieved-rate ratio is comparable across noisy machines.

What users run is measured too: ``--path restore`` times ``restore_sequence`` (the test / predict
path with the model's tiles and chunks) at ``--size HxW`` against the bare forward at 256x256 per
pixel in the same process, and ``--metrics`` times the Evaluator's scoring of real 640x480 NTURain
frames against BasicSR's formulation of the same scores.

The package hands on the names of its rooms: one per protocol (``forward``, ``restore``,
``metrics``), the measuring they share (``timing``), the shared options (``arguments``) and the
command with its table and files (``command``).
"""

from derain_zoo.benchmark.arguments import add_protocol_arguments, at_least, frame_size, json_object
from derain_zoo.benchmark.command import add_arguments, config_init_args, format_rows, protocol, run
from derain_zoo.benchmark.forward import FIELDS, FORWARD_TABLE, component_gflops, inference_parameters, measure
from derain_zoo.benchmark.metrics import METRICS_TABLE, SAMPLE_PAIRS, basicsr_scores, measure_metrics, read_pairs
from derain_zoo.benchmark.restore import BARE_SHAPE, RESTORE_TABLE, measure_restore
from derain_zoo.benchmark.timing import count_flops, matmul_rate, peak_memory_mb, sync, timed_runs

__all__ = [
    "BARE_SHAPE",
    "FIELDS",
    "FORWARD_TABLE",
    "METRICS_TABLE",
    "RESTORE_TABLE",
    "SAMPLE_PAIRS",
    "add_arguments",
    "add_protocol_arguments",
    "at_least",
    "basicsr_scores",
    "component_gflops",
    "config_init_args",
    "count_flops",
    "format_rows",
    "frame_size",
    "inference_parameters",
    "json_object",
    "matmul_rate",
    "measure",
    "measure_metrics",
    "measure_restore",
    "peak_memory_mb",
    "protocol",
    "read_pairs",
    "run",
    "sync",
    "timed_runs",
]
