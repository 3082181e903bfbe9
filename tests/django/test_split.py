"""A split (name -> first_name, last_name): partial writes of one side, SQL expressions."""

from __future__ import annotations

import pytest
from django.db.models.functions import Upper

from dualwrite.errors import SpecError
from dualwrite.stages import Stage
from tests.django.helpers import raw_rows, set_stage
from tests.django.shop.models import Person

KEY = "person-split"


def stored(alias: str) -> list[tuple[str, str | None, str | None]]:
    return raw_rows(alias, "shop_person", "name, first_name, last_name")


def test_old_side_writes_split(alias: str) -> None:
    set_stage(alias, KEY, Stage.SHADOW)
    a = Person.objects.create(name="Ada Lovelace")
    Person.objects.bulk_create([Person(name="Alan")])
    Person.objects.filter(pk=a.pk).update(name=Upper("name"))
    assert stored(alias) == [("ADA LOVELACE", "ADA", "LOVELACE"), ("Alan", "Alan", "")]
    # reads: loaded objects and SQL agree
    assert [(p.first_name, p.last_name) for p in Person.objects.order_by("pk")] == [
        ("ADA", "LOVELACE"), ("Alan", "")]
    assert list(Person.objects.filter(last_name="LOVELACE").values_list("name", flat=True)) \
        == ["ADA LOVELACE"]


def test_partial_new_side_writes_join(alias: str) -> None:
    set_stage(alias, KEY, Stage.RAMPDOWN)
    g = Person.objects.create(name="x", first_name="Grace", last_name="Hopper")
    assert stored(alias) == [("Grace Hopper", "Grace", "Hopper")]
    g = Person.objects.get(pk=g.pk)
    g.last_name = "Murray"
    g.save(update_fields=["last_name"])  # one new column: the other is the loaded one
    assert stored(alias) == [("Grace Murray", "Grace", "Murray")]
    Person.objects.filter(pk=g.pk).update(first_name="Amazing")  # SQL: the stored last_name
    assert stored(alias) == [("Amazing Murray", "Amazing", "Murray")]
    Person.objects.filter(pk=g.pk).update(first_name=Upper("first_name"))
    assert stored(alias) == [("AMAZING Murray", "AMAZING", "Murray")]


def test_a_partial_write_without_the_other_value_is_a_clear_error(alias: str) -> None:
    set_stage(alias, KEY, Stage.RAMPDOWN)
    Person.objects.create(name="Ada Lovelace")
    p = Person.objects.only("id", "first_name").get()
    p.first_name = "Augusta"
    with pytest.raises(SpecError) as info:
        p.save(update_fields=["first_name"])
    assert "last_name" in info.value.message and info.value.hint
    assert stored(alias) == [("Ada Lovelace", "Ada", "Lovelace")]  # nothing changed
