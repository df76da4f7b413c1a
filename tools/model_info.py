#!/usr/bin/env python
"""What an architecture costs: python tools/model_info.py --cfg CFG --arch ARCH [--image-size N]

ARCH is an encoded key (e.g. 4432214), a result.json of tools/search.py, or a
named architecture of the space (e.g. BNASv2_CLR_v1, DARTS_V2). Builds the standalone
network that ``space.build(arch)`` gives (the retraining network) and prints
one JSON line: ``{"arch", "space", "params", "macs", "image_size"}``; MACs are
the multiply-accumulates of conv and linear layers for one image of N x N
pixels (default ``data.image_size``) in eval mode, params are all parameters
except those of an auxiliary head; a network with an auxiliary head
(``net.auxiliary_head``, e.g. DARTS') adds ``params_aux``, the count with it.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasbench.cli import load_cfg, make_parser, positive_int  # noqa: E402
from nasbench.utils import run_cli  # noqa: E402


def model_info(cfg, arch, image_size=None) -> dict:
    """``{"arch", "space", "params", "macs", "image_size"}`` (+ ``params_aux``) of ``space.build(arch)``.

    Raises:
        ArchError, NasbenchError, ConfigError: bad architecture, file or image size.
    """
    from nasbench.errors import ConfigError
    from nasbench.metrics.flops import auxiliary_params, count_macs, count_params
    from nasbench.pipeline import read_arch
    from nasbench.spaces import build_space
    size = int(cfg.data.image_size if image_size is None else image_size)
    if size <= 0:
        raise ConfigError(f"--image-size must be a positive number of pixels, got {size}")
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    a = read_arch(space, arch)
    net = space.build(a).eval()
    total, aux = int(count_params(net)), int(auxiliary_params(net))
    out = {"arch": space.encode(a), "space": space.name, "params": total - aux,
           "macs": int(count_macs(net, (3, size, size))), "image_size": size}
    if getattr(net, "auxiliary_head", None) is not None:
        out["params_aux"] = total
    return out


def main(argv=None):
    p = make_parser(__doc__.splitlines()[0])
    p.add_argument("--arch", required=True, help="architecture key, result.json, or a named architecture")
    p.add_argument("--image-size", type=positive_int, default=None, help="input side in pixels (default data.image_size)")
    args = p.parse_args(argv)
    print(json.dumps(model_info(load_cfg(args), args.arch, args.image_size)))


if __name__ == "__main__":
    sys.exit(run_cli(main))
