import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildWithOptions(build_py):
    """Also install the top-level ``options/`` folder and LICENSE as package data (``mrnet_arch/options/``,
    ``mrnet_arch/LICENSE``), so that ``mrnet demo`` and ``mrnet contribute`` find the shipped option files and the
    licence (written beside the spandrel architecture) in a wheel install."""

    def run(self):
        super().run()
        root = os.path.dirname(os.path.abspath(__file__))
        source = os.path.join(root, 'options')
        if os.path.isdir(source) and not getattr(self, 'editable_mode', False):
            shutil.copytree(source, os.path.join(self.build_lib, 'mrnet_arch', 'options'), dirs_exist_ok=True)
        if os.path.isfile(os.path.join(root, 'LICENSE')) and not getattr(self, 'editable_mode', False):
            shutil.copy(os.path.join(root, 'LICENSE'), os.path.join(self.build_lib, 'mrnet_arch', 'LICENSE'))


setup(
    name='mrnet_arch',
    version='0.1.0',
    description='MRNet (Memory Recursive Network for SISR, ACM MM 2020) as a BasicSR plugin',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='MIT',
    classifiers=[
        'License :: OSI Approved :: MIT License',
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Image Processing',
    ],
    packages=find_packages(include=['mrnet_arch', 'mrnet_arch.*']),
    package_data={'mrnet_arch': ['demo_weights/*', 'photo_data/*', 'pretrained/*']},
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
        'Pillow',
    ],
    extras_require={
        'test': [
            'pytest', 'scikit-image', 'onnx', 'onnxruntime', 'spandrel', 'matplotlib', 'ruff==0.5.0', 'selenium>=4.51',
            'huggingface_hub'
        ],
        'export': ['onnx', 'onnxruntime'],
        'spandrel': ['spandrel'],
        'hf': ['huggingface_hub'],  # Upscaler.from_pretrained('USER/REPO')
        'contribute': ['ruff==0.5.0'],  # mrnet contribute spandrel formats with spandrel's pinned ruff
        'bench': ['matplotlib'],
        'photos': ['scikit-image'],  # mrnet prepare photos and mrnet demo (scikit-image's photos)
        'lint': ['flake8', 'isort>=5', 'yapf'],
    },
    cmdclass={'build_py': BuildWithOptions},
    entry_points={'console_scripts': ['mrnet = mrnet_arch.cli:main']},
)
