"""anonvid: privacy-preserving video analytics in JAX/Flax.

Runtime dependencies are pinned to the versions the test suite runs against (Python 3.11; jax 0.10.2 is the
newest jax release for 3.11). TensorFlow and PyTorch are deliberately *not* runtime dependencies: datasets are
read through `tfds.data_source` + grain, and PyTorch appears only in the `[bench]` extra for peer comparisons.
"""
from setuptools import find_packages, setup

RUNTIME = [
    "jax==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "tensorflow-datasets==4.9.10",
    # tfds 4.9.10 imports importlib_resources without declaring it.
    "importlib_resources==7.1.0",
    "array-record==0.8.6",
    "ml-collections==1.1.0",
    "chex==0.1.92",
    "grain==0.2.18",
    "av==18.1.0",
    "numpy==2.4.6",
    "matplotlib==3.11.2",
    # imported by anonvid.pruning_figures (GIF writing); matplotlib depends on it too.
    "pillow==13.0.0",
    "tqdm==4.70.1",
    "absl-py==2.5.1",
]

TEST = [
    "pytest==9.2.0",
    # `make test` runs two workers: most tests are bound by single-threaded XLA compilation, so two overlap well.
    "pytest-xdist==3.8.0",
    "execnet==2.1.2",
    "scikit-learn==1.9.1",
    # OpenCV 5 wheels dropped the Haar cascades; 4.x is the oracle for image ops.
    "opencv-python-headless==4.14.0.94",
    # the real-face test: skimage's bundled photographs and its LBP face cascade (the independent counter)
    "scikit-image==0.26.0",
    # executes notebooks/anonvid_demo.ipynb
    "nbclient==0.11.0",
    "nbformat==5.11.1",
    "ipykernel==7.4.0",
]

# Face/person-aware minimization (`faces(...)`, `people(...)`): OpenCV 4.x ships the Haar cascades and the HOG
# people detector inside the wheel, so detection works offline (OpenCV 5 wheels dropped the cascades).
FACES = [
    "opencv-python-headless==4.14.0.94",
]

BENCH = [
    "torch==2.13.0",
    "paretoset==1.2.5",
]

setup(
    name="anonvid",
    version="0.1.0",
    description="Privacy-preserving video analytics in JAX/Flax: tubelet pruning, data minimization, "
    "adversarial anonymization, and the fresh-attacker evaluation protocol.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["anonvid", "anonvid.*", "configs"]),
    install_requires=RUNTIME,
    extras_require={"test": TEST + FACES, "faces": FACES, "bench": BENCH},
    entry_points={"console_scripts": ["anonvid=anonvid.cli:main"]},
)
