import pytest

from mien.detection.evaluate import read_genki_szsl, read_imglab


@pytest.fixture(scope="session")
def voc(shared_data):
    return read_imglab(shared_data / "detection" / "voc_faces" / "boxes.xml")


@pytest.fixture(scope="session")
def genki(shared_data):
    return read_genki_szsl(shared_data / "detection" / "genki_szsl", limit=40)
