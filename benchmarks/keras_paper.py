"""The paper's appendix B script (Keras/TensorFlow), timed on the same MNIST files digitrec reads.

The model, compile and fit arguments are the appendix's, line for line:
Conv2D(32,3,relu) MaxPool Conv2D(64,3,relu) MaxPool Flatten Dense(128,relu) Dense(10,softmax),
optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'],
fit(epochs=10, batch_size=64, validation_data=(x_test, y_test)).
What differs: the data source (digitrec.mnist instead of keras.datasets, which downloads);
a fixed seed and TensorFlow's thread settings (`--threads`); the options `--limit` (a
training subset) and `--no-validate` (no validation_data); `verbose=0` with a callback
that times the training part of each epoch (from the epoch's start until the validation
pass begins), so validation is not counted as training time. It reproduces the appendix's
training only, not section 4's plots and reports (digitrec's report draws those).

Needs the optional extra: pip install -e '.[bench]'   (tensorflow-cpu)
Run alone:  python benchmarks/keras_paper.py --epochs 10            # the paper's full run
Prints one JSON line: per-epoch training seconds, images/s and (unless --no-validate) each
epoch's test accuracy, the last being the final one.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def run(epochs: int = 10, limit: int = 0, threads: int = 2, validate: bool = True) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    from tensorflow.keras.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from tensorflow.keras.models import Sequential
    from tensorflow.keras.utils import to_categorical

    from digitrec import mnist

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.keras.utils.set_random_seed(0)

    data = mnist.load()
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    # --- the appendix, from here on (data preprocessing, model, compile, fit) ---
    x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255
    x_test = x_test.reshape(-1, 28, 28, 1).astype("float32") / 255
    y_train = to_categorical(y_train)
    y_test = to_categorical(y_test)

    model = Sequential([
        Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        MaxPooling2D((2, 2)),
        Conv2D(64, (3, 3), activation="relu"),
        MaxPooling2D((2, 2)),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

    class Timer(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.train_seconds: list[float] = []
            self._t0 = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_test_begin(self, logs=None):  # validation starts: the epoch's training part is over
            self.train_seconds.append(time.perf_counter() - self._t0)

        def on_epoch_end(self, epoch, logs=None):
            if len(self.train_seconds) <= epoch:  # no validation pass
                self.train_seconds.append(time.perf_counter() - self._t0)

    timer = Timer()
    hist = model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0, callbacks=[timer],
                     validation_data=(x_test, y_test) if validate else None)
    n = len(x_train)
    return {
        "engine": f"tensorflow {tf.__version__} / keras {tf.keras.__version__ if hasattr(tf.keras, '__version__') else ''}",
        "threads": threads, "images": n, "epochs": epochs,
        "epoch_train_seconds": timer.train_seconds,
        "images_per_s": [n / t for t in timer.train_seconds],
        "val_accuracy": [float(a) for a in hist.history.get("val_accuracy", [])],
        "parameters": int(model.count_params()),
        "numpy": np.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only (0 = all 60,000)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-validate", action="store_true", help="skip the per-epoch test pass")
    a = ap.parse_args()
    print(json.dumps(run(a.epochs, a.limit, a.threads, not a.no_validate)))


if __name__ == "__main__":
    main()
