"""A salient-object segmentation model that finds the object on any background: the U²-Net family
as rembg publishes it (ONNX: one 1x3xSxS image in, a 1x1xSxS saliency map first out), run by
onnxruntime on the CPU.

Chosen by the CUT_OUT_MODEL setting (the path of an .onnx file); ``foreground.cut_out`` falls back
to its weight-free cut-out without one, and for plain backgrounds, where that one is exact.
"""

import numpy as np
import PIL.Image

# U²-Net's training normalisation (ImageNet's).
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
MIN_PEAK_SALIENCY = 0.5


class SegmentationModel:
    def __init__(self, session):
        self.session = session
        (model_input,) = session.get_inputs()
        self.input_name = model_input.name
        self.size = int(model_input.shape[-1])

    @classmethod
    def load(cls, path: str, threads: int = 1) -> "SegmentationModel":
        """Loaded once per worker process; ``threads`` per call (workers run several processes)."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        return cls(session)

    def __call__(self, image: PIL.Image.Image) -> np.ndarray:
        """The object's soft alpha (0-1) at ``image``'s size."""
        rgb = image.convert("RGB").resize((self.size, self.size), PIL.Image.Resampling.BILINEAR)
        pixels = (np.asarray(rgb, dtype=np.float32) / 255 - MEAN) / STD
        batch = pixels.transpose(2, 0, 1)[None]
        saliency = self.session.run(None, {self.input_name: batch})[0][0, 0]
        low, high = float(saliency.min()), float(saliency.max())
        # Spread to 0-1 as rembg does, unless nothing reached an even chance of being the object.
        if high < MIN_PEAK_SALIENCY or high - low < 1e-6:
            return np.zeros((image.height, image.width))
        alpha = (saliency - low) / (high - low)
        mask = PIL.Image.fromarray(np.round(alpha * 255).astype(np.uint8))
        return np.asarray(mask.resize(image.size, PIL.Image.Resampling.BILINEAR)) / 255.0
