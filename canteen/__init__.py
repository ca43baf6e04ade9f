"""canteen: operations system for a city's senior meal-assistance programme (老年助餐)."""

from canteen.factory import create_app

__all__ = ["create_app"]
