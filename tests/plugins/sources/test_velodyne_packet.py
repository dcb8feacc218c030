"""The Velodyne packet layout (velodyne_packet): each rule of the VLP-16 manual's data packet,
and velodyne-decoder turning packets built to it into the points the manual says they hold."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from velodyne_helpers import RING_OF_LASER, expected_points, vlp16_stream

from fusionrt.plugins.sources import velodyne_packet as wire

azimuths = st.lists(st.integers(0, 35999), min_size=12, max_size=12)
returns = st.lists(
    st.lists(st.integers(0, 65535), min_size=32, max_size=32), min_size=12, max_size=12
)
reflectivities = st.lists(
    st.lists(st.integers(0, 255), min_size=32, max_size=32), min_size=12, max_size=12
)


factory = st.tuples(
    st.integers(0, 3600 * 10**6 - 1),
    st.sampled_from(sorted(wire.RETURN_MODES)),
    st.sampled_from(sorted(set(wire.PRODUCT_IDS.values()))),
)


@given(azimuths, returns, reflectivities, factory)
def test_a_packet_built_to_the_layout_is_well_formed_and_reads_back(
    azimuth, distance, reflectivity, stamp_mode_product
):
    stamp, mode, product = stamp_mode_product
    packet = wire.build_packet(
        azimuth, distance, reflectivity, stamp, return_mode=mode, product=product
    )
    assert len(packet) == wire.PACKET_SIZE == 1206
    assert wire.malformed(packet) is None
    assert wire.timestamp_us(packet) == stamp
    assert wire.product_id(packet) == product
    for block in range(12):  # the manual's byte positions
        at = block * wire.BLOCK_SIZE
        assert packet[at : at + 2] == b"\xff\xee"
        assert struct.unpack_from("<H", packet, at + 2)[0] == azimuth[block]
        for channel in (0, 31):
            d, r = struct.unpack_from("<HB", packet, at + 4 + 3 * channel)
            assert (d, r) == (distance[block][channel], reflectivity[block][channel])
    assert packet[1204:] == bytes((mode, product))


def _packet(**changes: object) -> bytearray:
    data = bytearray(wire.build_packet([0] * 12, [[100] * 32] * 12, [[7] * 32] * 12, 5))
    for offset, value in changes.items():
        data[int(offset.removeprefix("at"))] = int(str(value))
    return data


@given(st.integers(0, 11), st.integers(0, 254))
def test_a_block_flag_that_is_not_ff_is_malformed(block, first):
    assert "flag" in (wire.malformed(_packet(**{f"at{block * 100}": first})) or "")


@given(st.integers(0, 11), st.integers(0, 255).filter(lambda b: b not in b"\xee\xdd\xcc\xbb"))
def test_a_block_naming_no_laser_bank_is_malformed(block, bank):
    assert "flag" in (wire.malformed(_packet(**{f"at{block * 100 + 1}": bank})) or "")


@given(st.integers(0, 11), st.sampled_from(b"\xee\xdd\xcc\xbb"))
def test_every_laser_bank_is_well_formed(block, bank):
    assert wire.malformed(_packet(**{f"at{block * 100 + 1}": bank})) is None


@given(st.integers(0, 11), st.integers(36000, 65535))
def test_an_azimuth_of_360_degrees_or_more_is_malformed(block, azimuth):
    data = _packet()
    struct.pack_into("<H", data, block * 100 + 2, azimuth)
    assert "azimuth" in (wire.malformed(bytes(data)) or "")


@given(st.integers(0, 255).filter(lambda b: b not in wire.RETURN_MODES))
def test_an_unknown_return_mode_is_malformed(mode):
    assert "return mode" in (wire.malformed(_packet(at1204=mode)) or "")


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**31), st.floats(300, 1200), st.integers(0, 3600 * 10**9 - 1))
def test_velodyne_decoder_gives_the_manuals_points(seed, rpm, within_hour_ns):
    """Every return of a revolution where the manual puts it: the elevation and vertical offset
    of its laser, the azimuth interpolated by its firing time, the distance in 2 mm units."""
    vd = pytest.importorskip("velodyne_decoder")
    start_ns = 1_800_000_000 * 10**9 // (3600 * 10**9) * 3600 * 10**9 + within_hour_ns
    packets = vlp16_stream(80, start_ns, rpm=rpm, seed=seed, no_return_every=13)
    decoder = vd.StreamDecoder(vd.Config(model=vd.Model.VLP16))
    clouds = [decoder.decode(p.fired_ns / 1e9, p.data, True) for p in packets]
    clouds.append(decoder.finish(True))
    points = np.concatenate([c[1] for c in clouds if c is not None])
    expected = expected_points(packets)
    assert len(points) == len(expected)  # the returns without a distance are not points
    r = np.hypot(np.hypot(expected["x"], expected["y"]), expected["z"])
    # within the packet's own resolution: 2 mm of distance, 0.01° of azimuth at that range,
    # and 3 mm for where the manual's vertical offset (≤ 11.2 mm) meets x, y
    tolerance = 0.002 + r * np.radians(0.01) + 0.003
    error = np.sqrt(
        (points["x"] - expected["x"]) ** 2
        + (points["y"] - expected["y"]) ** 2
        + (points["z"] - expected["z"]) ** 2
    )
    assert (error <= tolerance).all(), f"worst {error.max():.4f} m"
    assert (points["ring"] == RING_OF_LASER[expected["laser"]]).all()
    np.testing.assert_allclose(points["intensity"], expected["intensity"] * 255)
