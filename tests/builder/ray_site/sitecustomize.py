"""Started in every process of the test Ray cluster (`test_ray_engine`): ``sim:robot`` there is
the tests' fake simulator (`fake_sim`), as the monkeypatched driver's is."""

from tpru.sources import sim

sim.SIMULATORS["robot"] = "fake_sim:robot"
