from .complexity import default_input_shape, model_complexity

__all__ = ['model_complexity', 'default_input_shape']
