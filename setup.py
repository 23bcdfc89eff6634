from setuptools import find_packages, setup

setup(
    name='mrnet_arch',
    version='0.1.0',
    description='MRNet (Memory Recursive Network for SISR, ACM MM 2020) as a BasicSR plugin',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mrnet_arch', 'mrnet_arch.*']),
    package_data={'mrnet_arch': ['demo_weights/*']},
    python_requires='>=3.9',
    install_requires=[
        'basicsr==1.4.2',
        'torch',
        'torchvision',
        'opencv-python',
        'lmdb',
        'pyyaml',
        'addict',
        'tqdm',
        'safetensors',
    ],
    extras_require={
        'test': ['pytest', 'scikit-image', 'onnx', 'onnxruntime', 'spandrel', 'matplotlib'],
        'export': ['onnx', 'onnxruntime'],
        'spandrel': ['spandrel'],
        'bench': ['matplotlib'],
        'lint': ['flake8', 'isort>=5', 'yapf'],
    },
    entry_points={'console_scripts': ['mrnet = mrnet_arch.cli:main']},
)
