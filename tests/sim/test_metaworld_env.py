"""MetaWorldEnv: seeded layouts, camera frames, demonstrator appearance, success flag and errors."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from vid2robot.sim.metaworld_env import (
    MT10_TASKS,
    SHARED_STARTS,
    STATE_NAMES,
    MetaWorldEnv,
    task_index,
    task_text,
)


@pytest.fixture(scope="module")
def env() -> MetaWorldEnv:
    with MetaWorldEnv("reach-v3", seed=0, image_size=32) as env:
        yield env


def test_layouts_repeat_per_seed_across_instances(env: MetaWorldEnv) -> None:
    first = env.reset(11)
    other = env.reset(12)
    assert not np.allclose(first.state[-3:], other.state[-3:])  # a different goal
    with MetaWorldEnv("reach-v3", seed=999, image_size=32) as fresh:
        again = fresh.reset(11)
    np.testing.assert_array_equal(first.state, again.state)
    for cam in ("robot", "demonstrator"):
        np.testing.assert_array_equal(first.frames[cam], again.frames[cam])


def test_frames_views_and_restored_colours(env: MetaWorldEnv) -> None:
    obs = env.reset(3)
    assert set(obs.frames) == {"robot", "demonstrator"} and obs.state.shape == (len(STATE_NAMES),)
    for frame in obs.frames.values():
        assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8 and frame.std() > 5
    assert not np.array_equal(obs.frames["robot"], obs.frames["demonstrator"])
    rgba = env._env.model.geom_rgba.copy()
    plain = env.render("robot")
    env.render("demonstrator")
    np.testing.assert_array_equal(env._env.model.geom_rgba, rgba)  # the re-colouring is undone
    np.testing.assert_array_equal(env.render("robot"), plain)
    with MetaWorldEnv(
        "reach-v3", image_size=32, cameras=("demonstrator",), demonstrator_appearance=False
    ) as same:
        robot_coloured = same.reset(3).frames["demonstrator"]
    assert np.abs(robot_coloured.astype(int) - obs.frames["demonstrator"]).sum() > 0


def test_an_env_collected_during_a_render_does_not_corrupt_the_frame(
    env: MetaWorldEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cyclic garbage collector may finalize another env at any allocation, including the moment after
    this renderer made its GL context current; releasing the other context there must not spoil the frame."""
    env.reset(3)
    clean = env.render("robot")
    other = MetaWorldEnv("reach-v3", seed=1, image_size=32)
    other.reset(4)
    other.cycle = other  # only the cyclic collector can free it
    del other
    context = env._renderer._gl_context
    make_current = context.make_current

    def make_current_then_collect() -> None:
        make_current()
        gc.collect()  # the worst moment for the other env's finalizer to run

    monkeypatch.setattr(context, "make_current", make_current_then_collect)
    np.testing.assert_array_equal(env.render("robot"), clean)


def test_expert_succeeds_and_zero_action_does_not() -> None:
    with MetaWorldEnv("reach-v3", image_size=32, cameras=(), max_steps=120) as blind:  # no rendering: fast
        blind.reset(5)
        assert any(blind.step(blind.expert_action())[1] for _ in range(120))
        blind.reset(5)
        done = False
        while not done:
            _, success, done = blind.step(np.zeros(4, np.float32))
            assert not success
        assert blind.steps == blind.max_steps == 120
        with pytest.raises(RuntimeError, match="max_steps=120"):
            blind.step(np.zeros(4))


def test_bad_inputs_raise_clear_errors(env: MetaWorldEnv) -> None:
    with pytest.raises(ValueError, match=r"unknown Meta-World task 'reach'.*reach-v3"):
        MetaWorldEnv("reach")
    with pytest.raises(ValueError, match=r"unknown cameras \['wrist'\]"):
        MetaWorldEnv("reach-v3", cameras=("wrist",))
    with pytest.raises(ValueError, match=r"max_steps must be in \[1, 500\]"):
        MetaWorldEnv("reach-v3", max_steps=501)
    env.reset(0)
    with pytest.raises(ValueError, match="action must be 4 finite floats"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="action must be 4 finite floats"):
        env.step(np.array([0, 0, np.nan, 0]))


def test_task_ids_and_text() -> None:
    assert MT10_TASKS[0] == "reach-v3" and task_index("reach-v3") == 0
    assert task_text("drawer-open-v3") == "open the drawer"
    assert task_text("coffee-pull-v3") == "coffee pull"


@pytest.mark.parametrize(
    "pair",
    [
        ("drawer-open-v3", "drawer-close-v3"),
        ("handle-press-v3", "handle-pull-v3"),
        ("door-lock-v3", "door-unlock-v3"),
    ],
)
def test_shared_start_makes_a_pair_look_the_same_and_experts_still_succeed(pair: tuple[str, str]) -> None:
    firsts, arms = {}, {}
    for task in pair:
        with MetaWorldEnv(task, image_size=64, cameras=("robot",), hide_goal=True, shared_start=True) as env:
            env.reset(9)  # a different episode first: the start must not depend on where the last one ended
            for _ in range(20):
                env.step(env.expert_action())
            obs = env.reset(4)
            firsts[task], arms[task] = obs.frames["robot"], env._env.data.qpos[:9].copy()
            joint = env._env.data.qpos[9]
            assert joint == pytest.approx(SHARED_STARTS[task])
            np.testing.assert_array_equal(obs.state[18:36], obs.state[:18])  # no stale previous frame
            assert any(env.step(env.expert_action())[1] for _ in range(200)), task
        with MetaWorldEnv(task, image_size=32, cameras=("robot",), hide_goal=True) as own_start:
            assert own_start.reset(4) and own_start._env.data.qpos[9] != pytest.approx(joint)
    # same layout seed: the two tasks' arms stand alike (door-lock's own reset moves its arm further) and
    # their first frames are the same picture
    np.testing.assert_array_equal(*arms.values())
    np.testing.assert_array_equal(*firsts.values())


def test_hide_goal_covers_tasks_with_their_own_goal_site_names() -> None:
    with MetaWorldEnv(
        "handle-press-v3", image_size=16, cameras=(), hide_goal=True
    ) as env:  # goalPress, goalPull
        model = env._env.model
        goals = [i for i in range(model.nsite) if model.site(i).name.startswith("goal")]
        assert len(goals) == 2 and (model.site_rgba[goals, 3] == 0).all()
    with pytest.raises(ValueError, match="shared_start needs a task of an opposite pair"):
        MetaWorldEnv("reach-v3", shared_start=True)


@pytest.mark.slow
def test_triton_imports_after_a_render() -> None:
    """Mesa's llvmpipe and Triton each bring an LLVM: importing Triton after a render used to segfault."""
    import subprocess
    import sys

    pytest.importorskip("triton")
    script = (
        "import vid2robot.sim\n"
        "from vid2robot.sim.metaworld_env import MetaWorldEnv\n"
        "with MetaWorldEnv('reach-v3', image_size=32) as env:\n"
        "    env.reset(0)\n"
        "import torch._dynamo, lightning\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
