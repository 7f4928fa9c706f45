"""The sidebar's button as a user clicks it: the pipeline on a worker thread polled by the operator's modal
timer, Esc, errors, and Adjust Last Operation re-running the operator with an edited setting.

The bpy module has no event loop, and Blender hands out no operator instance there (bpy.app.background sends
invoke() straight to execute()). So these tests do what Blender's window manager does, with Blender's own
pieces: the operator's properties live in Blender's OperatorProperties of this very operator (same RNA: types,
enum items, ranges, is_property_set), and the operator class's own methods run on them: invoke's start_job,
then modal() once per event (TIMER, ESC), execute() again for a redo. The worker thread (ThreadJob), the
pipeline, the ONNX Runtime sessions and the builders are the real ones.
"""

import time
import types

import bpy
import numpy as np
import pytest
import tiny_models
from image_to_mesh.inference.settings import MeshSettings, options
from PIL import Image

OPERATOR = bpy.types.IMAGE_TO_MESH_OT_generate
TIMER, ESC, MOUSEMOVE = (types.SimpleNamespace(type=kind, value="NOTHING") for kind in ("TIMER", "ESC", "MOUSEMOVE"))


class RunningOperator:
    """An operator as Blender holds it while it runs: its properties and its reports; the methods are the
    operator class's own, so every line that runs is the add-on's."""

    def __init__(self, operator=OPERATOR):
        object.__setattr__(self, "reports", [])
        object.__setattr__(self, "operator", operator)

    @property
    def properties(self):
        # Fetched each time: a pointer kept across loading a file would point into the old window manager.
        return bpy.context.window_manager.operator_properties_last(self.operator.bl_idname)

    def forget(self):
        """No property set: a fresh operator."""
        for name in self.properties.bl_rna.properties.keys():
            self.properties.property_unset(name)

    def report(self, kind, message):
        self.reports.append((next(iter(kind)), message))

    def __getattr__(self, name):
        member = next((vars(cls)[name] for cls in self.operator.__mro__ if name in vars(cls)), None)
        if callable(member):
            return types.MethodType(member, self)
        return getattr(self.properties, name)  # a property of the operator, through Blender's RNA

    def __setattr__(self, name, value):
        if name.startswith("_"):  # what the operator keeps for itself between events (_job, _timer)
            object.__setattr__(self, name, value)
        else:
            setattr(self.properties, name, value)


@pytest.fixture
def operator():
    """A fresh operator (no property set yet), as a click in the sidebar creates it."""
    running = RunningOperator()
    running.forget()
    yield running
    running.forget()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A smooth 160 x 120 photo (a depth model sees one continuous surface in it, so every pixel keeps its
    vertex), and its depth map (2 m). One file for the module: the sidebar checks a photo once."""
    v, u = np.mgrid[:120, :160]
    # Whole grey levels per pixel: a ramp stretched over 0..255 climbs in uneven steps, a staircase whose
    # irregular steps the depth-edge rule may cut.
    rgb = np.stack([u, 2 * v, np.full_like(u, 90)], axis=-1).astype(np.uint8)
    folder = tmp_path_factory.mktemp("sidebar")
    Image.fromarray(rgb).save(folder / "photo.png")
    np.save(folder / "photo_depth.npy", np.full((120, 160), 2.0, np.float32))
    return folder / "photo.png"


def datablocks():
    return {kind: len(getattr(bpy.data, kind)) for kind in ("objects", "meshes", "cameras", "materials", "images")}


def click(operator):
    """What invoke() does outside background mode: the sidebar's settings, then the job and its timer."""
    assert OPERATOR.poll(bpy.context)
    operator.take_sidebar_settings(bpy.context)
    operator.start_job(bpy.context)
    assert operator._job._thread.is_alive() or operator._job.done


def timer_until_done(operator, timeout=120.0):
    """TIMER events, as the window manager sends them every 0.1 s, until modal() stops passing them through.
    Until then nothing may be built."""
    end = time.monotonic() + timeout
    while True:
        result = operator.modal(bpy.context, TIMER)
        if result != {"PASS_THROUGH"}:
            return result
        assert not [o for o in bpy.data.objects if o.type == "MESH"], "built before the job finished"
        assert time.monotonic() < end, "the job never finished"
        time.sleep(0.02)


def test_the_sidebar_runs_the_model_on_a_worker_thread_and_builds_the_mesh_once(empty_scene, operator, photo, tmp_path):
    model = tiny_models.channel_mean_depth(tmp_path / "depth.onnx")
    settings = empty_scene.image_to_mesh
    settings.photo_path = str(photo)
    settings.method, settings.model_file, settings.resolution = "model", str(model), 64

    click(operator)
    assert operator.modal(bpy.context, MOUSEMOVE) == {"PASS_THROUGH"}  # Blender stays usable meanwhile
    assert timer_until_done(operator) == {"FINISHED"}

    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    cameras = [o for o in bpy.data.objects if o.type == "CAMERA"]
    assert [o.name for o in meshes] == ["photo"] and len(cameras) == 1 and cameras[0].parent == meshes[0]
    assert len(meshes[0].data.vertices) == 64 * 48  # the sidebar's resolution, on the sidebar's photo
    assert bpy.context.view_layer.objects.active == meshes[0] and meshes[0].select_get()
    assert operator._job.result.report.model.file == str(model)  # the model ran, on the worker thread
    infos = [message for kind, message in operator.reports if kind == "INFO"]
    assert len(infos) == 1 and infos[0].startswith("photo (Depth Anything V2 Small): 3,072 vertices")


def test_esc_stops_the_model_run_and_builds_nothing(empty_scene, operator, photo, tmp_path):
    model = tiny_models.slow_depth(tmp_path / "slow.onnx", steps=300)  # a run of several seconds
    settings = empty_scene.image_to_mesh
    settings.photo_path = str(photo)
    settings.method, settings.model_file, settings.resolution = "model", str(model), 32
    before = datablocks()

    click(operator)
    job = operator._job
    end = time.monotonic() + 60
    while not job.cancel_token._runs:  # the model's run has started inside ONNX Runtime
        assert operator.modal(bpy.context, TIMER) == {"PASS_THROUGH"}
        assert time.monotonic() < end
        time.sleep(0.02)
    assert operator.modal(bpy.context, ESC) == {"CANCELLED"}  # Blender stops calling modal() now

    assert job.wait(timeout=60), "the worker thread did not end"
    assert job.result is None and job.error == "Image to Mesh was cancelled."  # stopped, not finished
    assert datablocks() == before and not empty_scene.objects
    assert ("WARNING", "Image to Mesh was cancelled.") in operator.reports


def test_a_failed_run_is_one_sentence_and_builds_nothing(empty_scene, operator, photo, tmp_path):
    settings = empty_scene.image_to_mesh
    settings.photo_path = str(photo)
    (tmp_path / "broken.onnx").write_bytes(b"not a model")  # found at the click, refused by ONNX Runtime in the job
    settings.method, settings.model_file = "model", str(tmp_path / "broken.onnx")
    before = datablocks()

    click(operator)
    assert timer_until_done(operator) == {"CANCELLED"}
    ((kind, message),) = operator.reports
    assert kind == "ERROR" and "not a valid ONNX model" in message and "\n" not in message
    assert datablocks() == before


def test_a_model_that_cannot_be_had_is_refused_at_the_click(empty_scene, operator, photo):
    settings = empty_scene.image_to_mesh
    settings.photo_path = str(photo)
    settings.method, settings.model = "model", "moge-2-vits"  # not downloaded, and online access is off
    before = datablocks()
    operator.take_sidebar_settings(bpy.context)
    # invoke() reports it: no job, no timer, no wait. (The extension's own InputError: Blender loaded it as bl_ext.)
    with pytest.raises(Exception, match="not downloaded") as refused:
        operator.start_job(bpy.context)
    assert type(refused.value).__name__ == "InputError"
    assert datablocks() == before


def undo(operator, undo_step):
    """Undo: the file as it was before the operator ran. The operator itself lives on (the window manager holds
    it, with its properties); loading a file clears the properties Blender keeps here, so they are put back."""
    properties = operator.properties
    kept = {name: getattr(properties, name) for name in properties.bl_rna.properties.keys()
            if name != "rna_type" and properties.is_property_set(name)}
    bpy.ops.wm.open_mainfile(filepath=str(undo_step))
    for name, value in kept.items():
        setattr(operator.properties, name, value)


def test_adjust_last_operation_rebuilds_once_with_the_edited_setting(empty_scene, operator, photo, tmp_path):
    settings = empty_scene.image_to_mesh
    settings.photo_path, settings.depth_path = str(photo), str(photo.with_name("photo_depth.npy"))
    settings.method, settings.resolution, settings.fov = "depth-map", 40, 60.0
    undo_step = tmp_path / "before.blend"  # what undo restores: the file as it was before the operator
    bpy.ops.wm.save_as_mainfile(filepath=str(undo_step), copy=True)

    operator.take_sidebar_settings(bpy.context)  # invoke (in background mode it goes on to execute)
    assert operator.execute(bpy.context) == {"FINISHED"}
    (mesh,) = [o for o in bpy.data.objects if o.type == "MESH"]
    assert len(mesh.data.vertices) == 40 * 30

    # The redo panel writes the edited values into the operator's own properties; Blender then undoes the
    # operator and executes it again with them.
    operator.properties.resolution = 80
    operator.properties.fov = 40.0
    undo(operator, undo_step)
    assert operator.execute(bpy.context) == {"FINISHED"}

    (mesh,) = [o for o in bpy.data.objects if o.type == "MESH"]
    (camera,) = [o for o in bpy.data.objects if o.type == "CAMERA"]
    assert mesh.name == "photo" and len(mesh.data.vertices) == 80 * 60  # rebuilt with the edited resolution
    assert np.degrees(camera.data.angle_x) == pytest.approx(40.0, abs=1e-4)  # and the edited field of view
    assert bpy.context.scene.image_to_mesh.resolution == 40  # the sidebar keeps its own value


def test_the_sidebar_prepares_the_photo_and_says_what_it_did(empty_scene, operator, photo):
    settings = empty_scene.image_to_mesh
    settings.photo_path, settings.depth_path = str(photo), str(photo.with_name("photo_depth.npy"))
    settings.method, settings.resolution = "depth-map", 40
    settings.upscale, settings.white_balance, settings.auto_exposure = "2", "auto", True

    click(operator)
    assert timer_until_done(operator) == {"FINISHED"}
    (mesh,) = [o for o in bpy.data.objects if o.type == "MESH"]
    (camera,) = [o for o in bpy.data.objects if o.type == "CAMERA"]
    texture = next(n for n in mesh.active_material.node_tree.nodes if n.type == "TEX_IMAGE").image
    assert tuple(texture.size) == (320, 240)  # upscaled twice (bicubic: no model in this scene's folder)
    assert len(mesh.data.vertices) == 40 * 30 and camera.data.background_images[0].image == texture
    infos = [message for kind, message in operator.reports if kind == "INFO"]
    assert [m.split(" ")[1] for m in infos[1:]] == ["white", "exposure", "upscaled"]


def test_every_setting_is_shown_in_the_redo_panel():
    # Adjust Last Operation draws an operator's properties except hidden ones.
    properties = bpy.ops.image_to_mesh.generate.get_rna_type().properties
    for name, _, opt in options(MeshSettings):
        if "blender" in opt.shown_in:
            assert name in properties and not properties[name].is_hidden, name
    assert {"REGISTER", "UNDO"} <= OPERATOR.bl_options
