"""SynthStreets: procedurally generated driving scenes, written in the Cityscapes layout on first use.

Why it exists: the project must train and test end to end on a machine with no dataset and no
network, and a dataset of random blobs would not show whether distillation helps. These scenes
are built to be *learnable but not trivial*: a perspective street (road, sidewalks with kerbs,
verges, buildings, walls, fences, trees, sky) populated with vehicles, people, riders, poles,
traffic lights and signs, with Cityscapes-like class imbalance, occlusion, texture, lighting
changes, blur and sensor noise. Look-alike classes (road/sidewalk, vegetation/terrain,
person/rider, car/truck/bus) differ only by texture, shape and context, so a larger model has
something to gain over a tiny one.

Why the Cityscapes layout with *raw* label ids: the data is read back by the project's real
Cityscapes loader, so the default run exercises exactly the code path real data takes, including
the raw-id -> train-id mapping and ignored ids (ego vehicle, rectification border, static, ...).

Why the generation details are what they are:

* every image is a pure function of ``(seed, split, index, height, width)``, so datasets are
  reproducible byte for byte and a small dataset is a prefix of a larger one;
* the dataset is written to a temporary sibling directory and renamed into place, and the
  manifest (``synthstreets.json``) is the completeness marker, so an interrupted run never
  leaves something that looks like a finished dataset;
* objects live in a simple 3-D world (metres, pinhole camera), so size, position and occlusion
  follow perspective: everything is projected and painted far to near;
* drawing is a few OpenCV polygon fills per object into one raster of "paint ids"; label,
  colour, texture and shading are looked up once per pixel at the end, vectorised, so hundreds
  of images take seconds.

How the package is laid out (a module imports only modules listed above it, so there are no cycles):

* ``palette``: raw label ids, photographic colours, random picks and colour jitter;
* ``geometry``: quads, circles, lumpy blobs, limbs and local frames in world metres;
* ``canvas``: the pinhole camera, the paint-id raster painters draw on, and the texture fields;
* ``layout``: the random street cross-section, lanes, camera and weather of one image;
* ``background``: sky, backdrop, ground, road, sidewalks, facades, walls, fences, hedges;
* ``objects``: trees, poles, lights, signs, vehicles, people, two-wheelers, street furniture;
* ``effects``: ego bonnet, rectification border, cast shadow, photometric camera effects;
* ``composer``: plans one scene and paints it far to near;
* ``api``: rendering one image, writing and reusing datasets; re-exported here.
"""

from segkd.data.synthstreets.api import (
    GENERATOR_VERSION,
    MANIFEST_NAME,
    TRAIN_CITIES,
    VAL_CITIES,
    ensure_synthstreets,
    generate_synthstreets,
    image_stem,
    render_synthstreets_image,
)

__all__ = [
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "TRAIN_CITIES",
    "VAL_CITIES",
    "ensure_synthstreets",
    "generate_synthstreets",
    "image_stem",
    "render_synthstreets_image",
]
