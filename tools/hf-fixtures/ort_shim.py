"""Run ONNX Runtime's pure-Python tools (quantization, transformers optimizer) without the onnxruntime wheel.

There is no Python onnxruntime package on these machines (and no PyPI), and Debian 12's onnx is 1.12. The tools
themselves are pure Python on top of onnx + numpy; what they import from elsewhere is stubbed here, narrowly:

* `onnxruntime` is a namespace whose __path__ is the source tree's onnxruntime/python/tools, so
  `onnxruntime.quantization` and `onnxruntime.transformers` are the real source files. InferenceSession,
  SessionOptions and GraphOptimizationLevel exist so that imports succeed; creating a session raises (nothing on
  the paths used here creates one: dynamic quantization needs no calibration, the optimizer runs with opt_level=0).
* `onnxruntime.capi._pybind_state.quantize_matmul_4bits`: the one native routine the MatMulNBits quantizer calls,
  replaced by a numpy port of MLAS `BlockwiseQuantizer<float, block, 4, columnwise>::quantizeAndTranspose`
  (onnxruntime/core/mlas/lib/q4_dq.cpp) as bound by onnxruntime_pybind_quant.cc, producing the layout of
  com.microsoft::MatMulNBits in docs/ContribOperators.md. The other native quantizers raise.
* onnx 1.12 lacks TensorProto.FLOAT8*/INT4/UINT4 (onnx >= 1.14/1.16), onnx.helper.tensor_dtype_to_np_dtype
  (>= 1.13) and onnx.reference (>= 1.13): the enum values are added with their ONNX numbers, the helper maps through
  onnx.mapping, onnx.reference.ReferenceEvaluator raises if used.
* `ml_dtypes`, `onnx_ir` (only from_proto().numpy() / serde.serialize_tensor(Tensor(...)) are used on the
  MatMulNBits QOperator path) and `coloredlogs` are not packaged for Debian 12: minimal stand-ins.
"""
import importlib
import os
import sys
import types

import numpy as np
import onnx
from onnx import numpy_helper


def _mod(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def _roundf(x):
    """C roundf: half away from zero (numpy rounds half to even)."""
    return np.sign(x) * np.floor(np.abs(x) + np.float32(0.5))


def quantize_matmul_4bits(packed, fp32weight, scales, zero_point, block_size, N, K, is_symmetric):
    """numpy port of MLAS MlasQuantizeBlockwise<float, 4>(columnwise=true) as called by
    onnxruntime_pybind_quant.cc: src [K, N] row major -> packed [N, k_blocks, block_size/2] (element 2i in the low
    nibble), scales [N, k_blocks], zero_point [N, ceil(k_blocks/2)] (asymmetric only). In-place, like the binding.

    Symmetric: zp 8, scale = -v / 8 where v is the block's value of largest magnitude (sign kept: the larger half
    of the range maps to [-8, 0]); asymmetric: range widened to include 0, scale = (max - min) / 15,
    zp = clamp(roundf(-min / scale), 0, 15). q = clamp(roundf(x / scale + zp), 0, 15), x * (1 / scale) in float32.
    """
    w = np.asarray(fp32weight, dtype=np.float32)
    assert w.shape == (K, N), (w.shape, K, N)
    k_blocks = (K + block_size - 1) // block_size
    wp = np.zeros((k_blocks * block_size, N), np.float32)
    wp[:K] = w
    blocks = wp.reshape(k_blocks, block_size, N).transpose(2, 0, 1)  # [N, k_blocks, block]
    valid = (np.arange(k_blocks * block_size) < K).reshape(k_blocks, block_size)[None]
    bmin = np.where(valid, blocks, np.float32(np.finfo(np.float32).max)).min(-1)
    bmax = np.where(valid, blocks, np.float32(-np.finfo(np.float32).max)).max(-1)
    if is_symmetric:
        v = np.where(np.abs(bmax) > np.abs(bmin), bmax, bmin)
        sc = (-v / np.float32(8.0)).astype(np.float32)
        zp = np.full(sc.shape, 8, np.float32)
    else:
        lo = np.minimum(bmin, np.float32(0))
        hi = np.maximum(bmax, np.float32(0))
        sc = ((hi - lo) / np.float32(15.0)).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            zfp = np.where(sc != 0, np.float32(0) - lo / sc, lo).astype(np.float32)
        zp = np.where(zfp < 0, 0, np.where(zfp > 15, 15, _roundf(zfp))).astype(np.float32)
    with np.errstate(divide="ignore"):
        rs = np.where(sc != 0, np.float32(1.0) / sc, np.float32(0)).astype(np.float32)
    q = np.clip(_roundf(blocks * rs[..., None] + zp[..., None]), 0, 15).astype(np.uint8)  # [N, k_blocks, block]
    q = q.reshape(N, k_blocks, block_size // 2, 2)
    packed[...] = (q[..., 0] & 0xF) | (q[..., 1] << 4)
    scales[...] = sc.astype(scales.dtype)
    if not is_symmetric:
        zpu = zp.astype(np.uint8)
        if k_blocks % 2:
            zpu = np.concatenate([zpu, np.full((N, 1), 8, np.uint8)], 1)
        zero_point[...] = (zpu[:, 0::2] & 0xF) | (zpu[:, 1::2] << 4)


def _native_missing(name):
    def f(*args, **kwargs):
        raise NotImplementedError(f"{name} is native onnxruntime code; not available without the wheel")

    return f


class _NoSession:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("onnxruntime.InferenceSession is not available (python tools only)")


def install(ort_tools_root):
    """Make `import onnxruntime.quantization` / `onnxruntime.transformers.optimizer` work from a source tree."""
    tools = os.path.join(ort_tools_root, "onnxruntime", "python", "tools")
    if not os.path.isdir(os.path.join(tools, "quantization")):
        raise FileNotFoundError(f"no onnxruntime/python/tools under {ort_tools_root}")

    # onnx 1.12 gaps
    for k, v in {"FLOAT8E4M3FN": 17, "FLOAT8E4M3FNUZ": 18, "FLOAT8E5M2": 19, "FLOAT8E5M2FNUZ": 20,
                 "UINT4": 21, "INT4": 22, "FLOAT4E2M1": 23}.items():
        if not hasattr(onnx.TensorProto, k):
            setattr(onnx.TensorProto, k, v)
    if not hasattr(onnx.helper, "tensor_dtype_to_np_dtype"):
        onnx.helper.tensor_dtype_to_np_dtype = lambda t: onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[t]
    if not hasattr(onnx.helper, "np_dtype_to_tensor_dtype"):
        onnx.helper.np_dtype_to_tensor_dtype = lambda d: onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(d)]
    try:
        importlib.import_module("onnx.reference")
    except ImportError:
        class ReferenceEvaluator:
            def __init__(self, *args, **kwargs):
                raise NotImplementedError("onnx.reference needs onnx >= 1.13")

        ref = _mod("onnx.reference", ReferenceEvaluator=ReferenceEvaluator)
        onnx.reference = ref

    # third-party modules with no Debian 12 package
    if "ml_dtypes" not in sys.modules:
        try:
            import ml_dtypes  # noqa: F401
        except ImportError:
            # stand-ins with the right byte width; only the 4-bit QDQ / float8 / bfloat16 paths would use them
            _mod("ml_dtypes", int4=np.int8, uint4=np.uint8, float8_e4m3fn=np.uint8, bfloat16=np.uint16,
                 int2=np.int8, uint2=np.uint8, float4_e2m1fn=np.uint8)
    try:
        import onnx_ir  # noqa: F401
    except ImportError:
        class _FromProto:
            def __init__(self, t):
                self.t = t

            def numpy(self):
                return numpy_helper.to_array(self.t)

        class Tensor:
            def __init__(self, array, name=None):
                self.array, self.name = np.asarray(array), name

        serde = types.SimpleNamespace(serialize_tensor=lambda t: numpy_helper.from_array(t.array, t.name))
        ir = _mod("onnx_ir", from_proto=_FromProto, Tensor=Tensor, serde=serde)
        sys.modules["onnx_ir.serde"] = serde
        del ir
    try:
        import coloredlogs  # noqa: F401
    except ImportError:
        _mod("coloredlogs", install=lambda *a, **k: None)

    # the onnxruntime namespace: real python tools, stubbed native parts
    vf = os.path.join(ort_tools_root, "VERSION_NUMBER")
    version = open(vf).read().strip() if os.path.exists(vf) else "source"
    ort = _mod("onnxruntime", __path__=[tools], __version__=version, InferenceSession=_NoSession,
               SessionOptions=_NoSession, OrtValue=_NoSession, RunOptions=_NoSession, GraphOptimizationLevel=types.SimpleNamespace(
                   ORT_DISABLE_ALL=0, ORT_ENABLE_BASIC=1, ORT_ENABLE_EXTENDED=2, ORT_ENABLE_ALL=99),
               get_available_providers=lambda: ["CPUExecutionProvider"], get_device=lambda: "CPU")
    ort.tools = _mod("onnxruntime.tools", __path__=[tools])  # the wheel ships symbolic_shape_infer etc. there
    capi = _mod("onnxruntime.capi", __path__=[])
    pybind = _mod("onnxruntime.capi._pybind_state", quantize_matmul_4bits=quantize_matmul_4bits)
    for n in ("quantize_matmul_2bits", "quantize_matmul_8bits", "quantize_qdq_matmul_4bits",
              "quantize_matmul_bnb4"):
        setattr(pybind, n, _native_missing(n))
    capi._pybind_state = pybind
    ort.capi = capi
    # the transformer optimizer's modules import each other as top-level modules
    sys.path.insert(0, os.path.join(tools, "transformers"))
    return version
