"""Image preprocessing: what `CLIPImageProcessor` does to a 64x64 RGB image, in numpy.

The world's images are already 64x64, so resize (shortest edge 64) and centre crop (64x64)
are identities; what remains is rescale by 1/255 and normalize with CLIP's mean/std, HWC->CHW.
The same constants go into preprocessor_config.json, so transformers.js reproduces this.
"""
import numpy as np

IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]
RESCALE = 1 / 255


def preprocess(images_u8: np.ndarray) -> np.ndarray:
    """uint8 [..., 64, 64, 3] -> float32 pixel_values [..., 3, 64, 64]."""
    x = images_u8.astype(np.float32) * np.float32(RESCALE)
    x = (x - np.array(IMAGE_MEAN, np.float32)) / np.array(IMAGE_STD, np.float32)
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def blank_image() -> np.ndarray:
    """The blind baseline's input: an all-black 64x64 image (uint8 HWC)."""
    return np.zeros((64, 64, 3), np.uint8)


def preprocessor_config(image_size: int) -> dict:
    return {
        "crop_size": {"height": image_size, "width": image_size},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": IMAGE_MEAN,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": IMAGE_STD,
        "processor_class": "LlavaProcessor",
        "resample": 3,
        "rescale_factor": RESCALE,
        "size": {"shortest_edge": image_size},
    }
