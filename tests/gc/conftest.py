import pytest

from tests.gc.gc_helpers import FakeMetadata, open_db


@pytest.fixture
def db(tmp_path):
    d = open_db(tmp_path)
    yield d
    d.close()


@pytest.fixture
def metadata(db):
    return FakeMetadata(db=db)
