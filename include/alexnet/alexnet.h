/*
 * libalexnet — AlexNet inference (and, later, training) as an embeddable C library.
 *
 * The whole public ABI lives in this header. Rules that keep it stable (see docs/ABI.md):
 *  - handles are opaque; options and info structs begin with `struct_size` and only ever grow at the end;
 *  - every enum value is pinned; nothing is removed or reordered within a major version;
 *  - every function returns an alexnet_status (or a plain value that cannot fail) and leaves its outputs
 *    untouched on failure; alexnet_last_error() gives the detail of this thread's last failure;
 *  - the library never prints, aborts or exits; it starts threads only for a CPU backend's pool, when the
 *    context options ask for more than one thread and supply no parallel_for of their own.
 *
 * Threading: a model is immutable once created and may be shared by any number of threads; a context is
 * used by one thread at a time. All functions are reentrant.
 */
#ifndef ALEXNET_ALEXNET_H
#define ALEXNET_ALEXNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- export ------------------------------------------------------------------------------------------ */
#if defined(_WIN32)
#  if defined(ALEXNET_BUILDING_SHARED)
#    define ALEXNET_API __declspec(dllexport)
#  else
#    define ALEXNET_API
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define ALEXNET_API __attribute__((visibility("default")))
#else
#  define ALEXNET_API
#endif

/* ---- version ----------------------------------------------------------------------------------------- */
#define ALEXNET_VERSION_MAJOR 0
#define ALEXNET_VERSION_MINOR 1
#define ALEXNET_VERSION_PATCH 0
#define ALEXNET_VERSION_NUMBER (ALEXNET_VERSION_MAJOR * 10000 + ALEXNET_VERSION_MINOR * 100 + ALEXNET_VERSION_PATCH)
#define ALEXNET_VERSION_STRING "0.1.0"

/* The version of the library actually loaded (compare with ALEXNET_VERSION_NUMBER you compiled against). */
ALEXNET_API unsigned alexnet_version_number(void);
ALEXNET_API const char *alexnet_version_string(void);

/* ---- status: values are pinned forever ------------------------------------------------------------- */
typedef enum alexnet_status {
    ALEXNET_OK = 0,
    ALEXNET_E_INVALID_ARGUMENT = 1, /* NULL pointer, value out of range, inconsistent options */
    ALEXNET_E_OUT_OF_MEMORY = 2,    /* the allocator returned NULL */
    ALEXNET_E_IO = 3,               /* a file could not be opened, read or written */
    ALEXNET_E_FORMAT = 4,           /* a file or buffer is malformed */
    ALEXNET_E_SHAPE = 5,            /* tensors or buffers do not fit the model */
    ALEXNET_E_UNSUPPORTED = 6,      /* a feature or dtype is not available here */
    ALEXNET_E_BACKEND = 7,          /* a backend or device failed */
    ALEXNET_E_STATE = 8,            /* call out of order (e.g. reading a layer before any inference) */
    ALEXNET_E_NOT_FOUND = 9         /* unknown backend, layer or tensor name */
} alexnet_status;

/* Constant text for a status ("invalid argument", ...); never NULL. */
ALEXNET_API const char *alexnet_status_string(alexnet_status status);
/* Detail of the calling thread's last failure ("conv2.weight: file has [256,48,5,5], model expects
 * [256,96,5,5]"), or "" if none. Valid until the thread's next call into the library. */
ALEXNET_API const char *alexnet_last_error(void);

/* ---- allocator: every host allocation the library makes goes through it ---------------------------- */
typedef struct alexnet_allocator {
    /* Return size bytes aligned to `alignment` (a power of two, at most 4096), or NULL on failure. */
    void *(*alloc)(void *user, size_t size, size_t alignment);
    /* Release a block from alloc; size is the size it was allocated with. ptr is never NULL. */
    void (*free)(void *user, void *ptr, size_t size);
    void *user;
} alexnet_allocator; /* all-NULL = the default aligned allocator (posix_memalign/free) */

/* ---- threads: a built-in pool, or the host's own job system ---------------------------------------- */
typedef void (*alexnet_task_fn)(void *task_context, size_t index);
/* Run task(task_context, i) for every i in [0, count), in any order and on any threads, and return when all
 * have finished. A game or robotics engine passes its job system here so the library starts no thread. */
typedef void (*alexnet_parallel_for_fn)(void *host, alexnet_task_fn task, void *task_context, size_t count);

/* ---- the network as data ------------------------------------------------------------------------------ */
typedef enum alexnet_variant {
    ALEXNET_VARIANT_CUSTOM = 0,      /* a configuration filled in by the caller */
    ALEXNET_VARIANT_ONE_TOWER = 1,   /* the classic article's net, 227 input, 62,378,344 parameters */
    ALEXNET_VARIANT_PAPER_2012 = 2,  /* two towers as groups=2, LRN; Caffe's bvlc_alexnet; 60,965,224 */
    ALEXNET_VARIANT_TORCHVISION = 3  /* torchvision.models.alexnet, 224 input (any >= 63); 61,100,840 */
} alexnet_variant;

/* How LRN's alpha is applied: b = a / (k + alpha' * sum(a^2))^beta over `size` neighbouring channels. */
typedef enum alexnet_lrn_alpha_scaling {
    ALEXNET_LRN_ALPHA_OVER_SIZE = 0, /* alpha' = alpha / size: Caffe, ONNX, PyTorch (k = 1 there) */
    ALEXNET_LRN_ALPHA_ABSOLUTE = 1   /* alpha' = alpha: the 2012 paper's formula (k = 2 there) */
} alexnet_lrn_alpha_scaling;

/* Where the hidden fully connected layers' dropout sits (it matters for training only). */
typedef enum alexnet_dropout_placement {
    ALEXNET_DROPOUT_BEFORE_HIDDEN_FC = 0, /* on the input of each hidden FC layer (torchvision) */
    ALEXNET_DROPOUT_AFTER_HIDDEN_FC = 1   /* on the output of each hidden FC layer, after ReLU (Caffe) */
} alexnet_dropout_placement;

#define ALEXNET_MAX_CONV_LAYERS 8
#define ALEXNET_MAX_HIDDEN_FC_LAYERS 4

typedef struct alexnet_conv_layer_config {
    uint32_t out_channels;
    uint32_t kernel_size; /* square kernels */
    uint32_t stride;
    uint32_t padding;     /* zero padding on every side */
    uint32_t groups;      /* 1, or 2 for the paper's two towers; divides both channel counts */
    uint32_t lrn;         /* nonzero: local response normalisation after this layer's ReLU */
    uint32_t max_pool;    /* nonzero: max pooling (pool_kernel/pool_stride) after ReLU (and LRN) */
} alexnet_conv_layer_config;

/* The architecture. Convolutions are each followed by ReLU; every hidden FC layer by ReLU and dropout;
 * the last FC layer has num_classes outputs and is followed by softmax. Fill it with alexnet_config_preset()
 * and edit, then check it with alexnet_config_validate(). */
typedef struct alexnet_config {
    size_t struct_size;
    alexnet_variant variant; /* the preset it came from; CUSTOM after edits that change the architecture */
    uint32_t input_channels; /* 3 for RGB, 1 for greyscale */
    uint32_t input_height, input_width; /* the default input size */
    uint32_t conv_count;     /* 1..ALEXNET_MAX_CONV_LAYERS */
    alexnet_conv_layer_config conv[ALEXNET_MAX_CONV_LAYERS];
    uint32_t pool_kernel, pool_stride;  /* 3 and 2: overlapping pooling */
    uint32_t lrn_size;
    float lrn_alpha, lrn_beta, lrn_k;
    alexnet_lrn_alpha_scaling lrn_alpha_scaling;
    /* 0: the last pooled map is flattened as is, and only the configured input size is accepted.
     * n > 0: adaptive average pooling to n x n first, so any input size that survives the convolutions is
     * accepted (torchvision: 6, so any size >= 63 x 63). */
    uint32_t adaptive_pool_size;
    uint32_t hidden_fc_count; /* 0..ALEXNET_MAX_HIDDEN_FC_LAYERS */
    uint32_t hidden_fc[ALEXNET_MAX_HIDDEN_FC_LAYERS];
    uint32_t num_classes;
    float dropout_rate;       /* 0.5; used by training only */
    alexnet_dropout_placement dropout_placement;
} alexnet_config;

ALEXNET_API alexnet_status alexnet_config_preset(alexnet_variant variant, alexnet_config *out_config);
/* ALEXNET_OK, or ALEXNET_E_INVALID_ARGUMENT with alexnet_last_error() naming the first bad field. */
ALEXNET_API alexnet_status alexnet_config_validate(const alexnet_config *config);
ALEXNET_API alexnet_status alexnet_config_parameter_count(const alexnet_config *config, uint64_t *out_count);
/* The smallest square input the configuration accepts (the configured size when adaptive_pool_size is 0). */
ALEXNET_API alexnet_status alexnet_config_min_input_size(const alexnet_config *config, uint32_t *out_size);

typedef enum alexnet_layer_type {
    ALEXNET_LAYER_INPUT = 0,
    ALEXNET_LAYER_CONV = 1,             /* convolution + bias + ReLU */
    ALEXNET_LAYER_LRN = 2,
    ALEXNET_LAYER_MAX_POOL = 3,
    ALEXNET_LAYER_ADAPTIVE_AVG_POOL = 4,
    ALEXNET_LAYER_DROPOUT = 5,          /* identity at inference */
    ALEXNET_LAYER_FC = 6,               /* fully connected + bias (+ ReLU for hidden layers) */
    ALEXNET_LAYER_SOFTMAX = 7
} alexnet_layer_type;

/* One row of the network summary (the table the classic article prints). */
typedef struct alexnet_layer_info {
    size_t struct_size;
    char name[16];          /* "conv1", "norm1", "pool1", ..., "fc6", "drop6", "fc8", "prob" */
    alexnet_layer_type type;
    uint32_t kernel_size, stride, padding, groups; /* 0 where they do not apply */
    uint32_t channels, height, width;  /* output shape of one image (FC: channels = features, 1 x 1) */
    uint64_t parameter_count;          /* weights + biases of this layer */
    uint32_t relu;                     /* nonzero: the output is after ReLU */
} alexnet_layer_info;

/* Fill rows[0..capacity) with the layers for an input of height x width (0, 0 = the configured size) and
 * set *out_count to the number of layers. rows may be NULL with capacity 0 to ask for the count. */
ALEXNET_API alexnet_status alexnet_config_summary(const alexnet_config *config, uint32_t height, uint32_t width,
                                                  alexnet_layer_info *rows, size_t capacity, size_t *out_count);

/* ---- model: configuration + weights; immutable, shareable across threads ---------------------------- */
typedef struct alexnet_model alexnet_model;

typedef enum alexnet_init_scheme {
    ALEXNET_INIT_DEFAULT = 0, /* the variant's own: PAPER for the article's nets, KAIMING for torchvision */
    ALEXNET_INIT_PAPER = 1,   /* weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and hidden FC, else 0 */
    ALEXNET_INIT_CAFFE = 2,   /* weights N(0, 0.01), hidden FC N(0, 0.005); biases 0.1 where PAPER has 1, else 0 */
    ALEXNET_INIT_KAIMING = 3  /* PyTorch's default: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
} alexnet_init_scheme;

typedef struct alexnet_model_options {
    size_t struct_size;
    alexnet_variant variant;       /* preset to use when config is NULL; default ONE_TOWER */
    const alexnet_config *config;  /* a custom architecture (copied), or NULL */
    uint32_t num_classes;          /* nonzero: replaces the configuration's class count */
    alexnet_init_scheme init;      /* alexnet_model_create only */
    alexnet_allocator allocator;   /* used for the model's whole life */
} alexnet_model_options;

ALEXNET_API void alexnet_model_options_init(alexnet_model_options *options);

/* A model with seeded weights: bit-identical for a given seed on every platform. */
ALEXNET_API alexnet_status alexnet_model_create(const alexnet_model_options *options, uint64_t seed,
                                                alexnet_model **out_model);
/* Load safetensors weights (F32, F16 or BF16) into the options' architecture. Every tensor of the model must
 * be present with its exact shape and finite values, and no other tensor may be. When options.num_classes is
 * 0 the class count is taken from the file's classifier (its "num_classes" metadata, if any, must agree). */
ALEXNET_API alexnet_status alexnet_model_load(const char *path, const alexnet_model_options *options,
                                              alexnet_model **out_model);
ALEXNET_API alexnet_status alexnet_model_load_memory(const void *data, size_t size,
                                                     const alexnet_model_options *options,
                                                     alexnet_model **out_model);
/* Write safetensors (F32) atomically: a temporary file beside path, then rename. */
ALEXNET_API alexnet_status alexnet_model_save(const alexnet_model *model, const char *path);
/* Serialise into buffer; with buffer NULL (capacity 0) only *out_size (the bytes needed) is set. */
ALEXNET_API alexnet_status alexnet_model_save_memory(const alexnet_model *model, void *buffer, size_t capacity,
                                                     size_t *out_size);
ALEXNET_API void alexnet_model_destroy(alexnet_model *model); /* NULL is a no-op */

ALEXNET_API alexnet_status alexnet_model_get_config(const alexnet_model *model, alexnet_config *out_config);
ALEXNET_API uint64_t alexnet_model_parameter_count(const alexnet_model *model); /* 0 for NULL */
ALEXNET_API uint32_t alexnet_model_num_classes(const alexnet_model *model);     /* 0 for NULL */

/* The model's parameter tensors, in file order (conv1.weight, conv1.bias, ...). */
typedef struct alexnet_tensor_info {
    size_t struct_size;
    char name[32];          /* the safetensors name, e.g. "features.0.weight" or "conv1.weight" */
    uint32_t rank;
    uint64_t shape[4];
    uint64_t element_count;
    const float *data;      /* owned by the model; valid while it lives */
} alexnet_tensor_info;
ALEXNET_API size_t alexnet_model_tensor_count(const alexnet_model *model);
ALEXNET_API alexnet_status alexnet_model_tensor(const alexnet_model *model, size_t index,
                                                alexnet_tensor_info *out_info);

/* ---- backends ------------------------------------------------------------------------------------------ */
typedef struct alexnet_backend_info {
    size_t struct_size;
    const char *name;        /* "reference", ...; static storage */
    const char *kind;        /* "cpu" or "gpu" */
    const char *description; /* what it is, or why it is unavailable */
    int32_t available;       /* nonzero: contexts can be created on it */
    int32_t score;           /* "auto" picks the available backend with the highest score */
} alexnet_backend_info;
ALEXNET_API size_t alexnet_backend_count(void);
ALEXNET_API alexnet_status alexnet_backend_get_info(size_t index, alexnet_backend_info *out_info);

/* Devices of every available backend ("cpu-simd:0", "opencl:0", "cuda:1", ...). A context is bound to one by
 * naming it in alexnet_context_options.backend; a bare backend name means its device 0. */
typedef struct alexnet_device_info {
    size_t struct_size;
    char name[40];           /* "<backend>:<index>" */
    const char *backend;     /* the backend's name; static storage */
    char description[128];   /* e.g. the GPU model, or the CPU ISA in use */
    uint64_t memory_bytes;   /* device memory; for host backends the physical memory */
    int32_t available;
} alexnet_device_info;
ALEXNET_API size_t alexnet_device_count(void);
ALEXNET_API alexnet_status alexnet_device_get_info(size_t index, alexnet_device_info *out_info);

/* ---- context: execution state and workspace on one backend; one thread at a time -------------------- */
typedef struct alexnet_context alexnet_context;

typedef struct alexnet_context_options {
    size_t struct_size;
    /* "auto" (or NULL), "cpu" (the best CPU backend), or a backend's name. The environment variable
     * ALEXNET_BACKEND applies only where this says "auto"; an explicit choice wins. */
    const char *backend;
    uint32_t batch;                     /* initial maximum batch; 0 = 1 */
    uint32_t height, width;             /* initial input size; 0 = the model's configured size */
    const char *const *capture_layers;  /* NULL-terminated layer names whose outputs stay readable */
    alexnet_allocator allocator;        /* all-NULL: the model's allocator */
    /* CPU parallelism (backends that run on the host; the reference backend always uses the calling thread).
     * num_threads: 1 (the default) = the calling thread only, so no thread is ever started unasked; 0 = one
     * per online CPU; n = the calling thread plus n - 1 pool threads. Results are bitwise identical for any
     * thread count. With parallel_for set, all parallel work goes through it and the library owns no thread. */
    uint32_t num_threads;
    alexnet_parallel_for_fn parallel_for;
    void *parallel_for_host;
    uint32_t profile_layers;            /* nonzero: time every layer of each inference (alexnet_context_profile) */
} alexnet_context_options;

ALEXNET_API void alexnet_context_options_init(alexnet_context_options *options);
/* The model must outlive the context. */
ALEXNET_API alexnet_status alexnet_context_create(const alexnet_model *model, const alexnet_context_options *options,
                                                  alexnet_context **out_context);
ALEXNET_API void alexnet_context_destroy(alexnet_context *context); /* NULL is a no-op */

/* Set the maximum batch and the input size (0 x 0 = the configured size), re-planning the workspace. The
 * only call after creation that allocates; on failure the previous shape stays in force. A model without
 * adaptive pooling accepts only its configured size. */
ALEXNET_API alexnet_status alexnet_context_reshape(alexnet_context *context, size_t batch, uint32_t height,
                                                   uint32_t width);
ALEXNET_API alexnet_status alexnet_context_get_shape(const alexnet_context *context, size_t *out_batch,
                                                     uint32_t *out_height, uint32_t *out_width);
ALEXNET_API size_t alexnet_context_workspace_bytes(const alexnet_context *context); /* 0 for NULL */
ALEXNET_API const char *alexnet_context_backend_name(const alexnet_context *context); /* NULL for NULL */

/* Per-layer timings of the last inference of a context created with profile_layers set. flops counts
 * multiply-adds as 2 (convolutions as direct convolution, whatever algorithm ran); 0 for other layers. */
typedef struct alexnet_layer_profile {
    size_t struct_size;
    char name[16];
    alexnet_layer_type type;
    double seconds;
    double flops;
} alexnet_layer_profile;
ALEXNET_API alexnet_status alexnet_context_profile(const alexnet_context *context, alexnet_layer_profile *rows,
                                                   size_t capacity, size_t *out_count);

/* ---- inference: allocates nothing --------------------------------------------------------------------- */
/* input: batch x C x H x W floats (NCHW at the reshaped size), already normalised; 1 <= batch <= the
 * reshaped batch. Outputs: batch x num_classes floats each; either may be NULL, not both. */
ALEXNET_API alexnet_status alexnet_infer(alexnet_context *context, const float *input, size_t batch,
                                         float *out_logits, float *out_probabilities);

/* The output of a layer named in capture_layers, from the last inference: `count` must be at least
 * batch x the layer's per-image element count (alexnet_context_layer_size). Values are after ReLU. */
ALEXNET_API alexnet_status alexnet_context_layer_size(const alexnet_context *context, const char *layer_name,
                                                      size_t *out_elements_per_image);
ALEXNET_API alexnet_status alexnet_layer_output(const alexnet_context *context, const char *layer_name,
                                                float *out, size_t count);

typedef struct alexnet_class_score {
    uint32_t class_index;
    float score;
} alexnet_class_score;
/* The k highest of scores[0..n), highest first; ties go to the lower index. k <= n. */
ALEXNET_API alexnet_status alexnet_top_k(const float *scores, size_t n, size_t k, alexnet_class_score *out);

/* ---- images ------------------------------------------------------------------------------------------ */
typedef enum alexnet_pixel_format {
    ALEXNET_PIXEL_RGB8 = 1,
    ALEXNET_PIXEL_RGBA8 = 2,
    ALEXNET_PIXEL_BGR8 = 3,
    ALEXNET_PIXEL_BGRA8 = 4,
    ALEXNET_PIXEL_GRAY8 = 5
} alexnet_pixel_format;

typedef struct alexnet_image {
    const uint8_t *pixels;
    uint32_t width, height;
    size_t row_stride_bytes; /* >= width x bytes per pixel */
    alexnet_pixel_format format;
} alexnet_image;

/* torchvision's evaluation transform: Resize(resize_size) (shorter side, antialiased bilinear as PIL does),
 * CenterCrop to the network's input size, ToTensor, Normalize(mean, std). */
typedef struct alexnet_image_options {
    size_t struct_size;
    uint32_t resize_size; /* 256; 0 = no resize, centre crop only (image must be large enough) */
    float mean[3];        /* 0.485, 0.456, 0.406 */
    float std[3];         /* 0.229, 0.224, 0.225 */
} alexnet_image_options;
ALEXNET_API void alexnet_image_options_init(alexnet_image_options *options);

/* Preprocess one image into out (channels x height x width floats, NCHW). channels is 3 (RGB order; grey
 * is replicated) or 1 (luminance, ITU-R 601: 0.299 R + 0.587 G + 0.114 B). options NULL = defaults.
 * Allocates nothing. */
ALEXNET_API alexnet_status alexnet_preprocess_image(const alexnet_image *image, const alexnet_image_options *options,
                                                    uint32_t channels, uint32_t height, uint32_t width,
                                                    float *out, size_t out_count);

/* Preprocess `count` images into the context's input (count <= its batch), infer, and write the k best
 * classes of image i to out_top_k[i * k .. i * k + k) (scores are softmax probabilities). Allocates nothing. */
ALEXNET_API alexnet_status alexnet_classify_images(alexnet_context *context, const alexnet_image *images, size_t count,
                                                   const alexnet_image_options *options, size_t k,
                                                   alexnet_class_score *out_top_k);

/* ---- training ---------------------------------------------------------------------------------------- */
/* A trainer owns a private copy of a model's weights, their momentum and gradients, and its own backend
 * context. The model it starts from is only read at creation: models stay immutable and shareable, and
 * any number of trainers may start from one. Trained weights become visible only at explicit points:
 * alexnet_trainer_export_model creates a new model (which contexts then use), so no inference ever runs
 * on weights that are being updated. A trainer is used by one thread at a time. See docs/TRAINING.md. */
typedef struct alexnet_trainer alexnet_trainer;

/* ---- datasets: labelled 8-bit images in memory ---- */
/* All images of a dataset share one size (any size: crops of the network's input size are taken inside
 * the training loop) and one channel count (1 grey, 3 RGB); pixels are stored interleaved (HWC). */
typedef struct alexnet_dataset alexnet_dataset;

typedef struct alexnet_dataset_options {
    size_t struct_size;
    uint32_t channels;           /* 1 or 3; 0 (loaders only) = what the file holds */
    uint32_t height, width;      /* 0 (loaders only) = what the file holds */
    uint32_t num_classes;        /* labels are < num_classes; 0 (loaders only) = the largest label + 1 */
    size_t capacity;             /* images to reserve room for up front; 0 = grow as needed */
    alexnet_allocator allocator; /* used for the dataset's whole life */
} alexnet_dataset_options;
ALEXNET_API void alexnet_dataset_options_init(alexnet_dataset_options *options);

ALEXNET_API alexnet_status alexnet_dataset_create(const alexnet_dataset_options *options,
                                                  alexnet_dataset **out_dataset);
/* Append one image of the dataset's size, in any pixel format: converted to the dataset's channels as
 * alexnet_preprocess_image does (grey replicated to RGB; RGB to grey by ITU-R 601 luminance). */
ALEXNET_API alexnet_status alexnet_dataset_add_image(alexnet_dataset *dataset, const alexnet_image *image,
                                                     uint32_t label);
/* Append count images packed as count x height x width x channels bytes, with their labels. */
ALEXNET_API alexnet_status alexnet_dataset_add(alexnet_dataset *dataset, const uint8_t *pixels,
                                               const uint32_t *labels, size_t count);
/* Load an IDX pair, the MNIST / Fashion-MNIST format (images: u8 [n][rows][cols], labels: u8 [n]), given
 * uncompressed (gunzip the distributed .gz files first). Every size in the headers is checked. options
 * may be NULL; nonzero channels/height/width/num_classes there must match the files. */
ALEXNET_API alexnet_status alexnet_dataset_load_idx(const char *images_path, const char *labels_path,
                                                    const alexnet_dataset_options *options,
                                                    alexnet_dataset **out_dataset);
ALEXNET_API alexnet_status alexnet_dataset_load_idx_memory(const void *images, size_t images_size,
                                                           const void *labels, size_t labels_size,
                                                           const alexnet_dataset_options *options,
                                                           alexnet_dataset **out_dataset);
/* A new dataset holding images [first, first + count) of dataset (e.g. to hold out a validation set). */
ALEXNET_API alexnet_status alexnet_dataset_subset(const alexnet_dataset *dataset, size_t first, size_t count,
                                                  alexnet_dataset **out_dataset);
ALEXNET_API void alexnet_dataset_destroy(alexnet_dataset *dataset); /* NULL is a no-op */
ALEXNET_API size_t alexnet_dataset_count(const alexnet_dataset *dataset); /* 0 for NULL */
/* A view of image index (valid while the dataset lives and is not appended to) and its label. */
ALEXNET_API alexnet_status alexnet_dataset_get(const alexnet_dataset *dataset, size_t index,
                                               alexnet_image *out_image, uint32_t *out_label);
/* Per-channel mean and standard deviation of pixel / 255 over the whole dataset (entries beyond the
 * dataset's channels are set to 0 and 1): what alexnet_augment_options.mean/std want. */
ALEXNET_API alexnet_status alexnet_dataset_channel_stats(const alexnet_dataset *dataset, float out_mean[3],
                                                         float out_std[3]);
/* Principal components of the pixel colours (pixel / 255) over the dataset, for the paper's PCA lighting
 * noise: eigenvalues in descending order, and eigenvectors row-major (out_eigenvectors[3 * i + j] is
 * component j of eigenvector i). A grey dataset gives its variance and the vector (1, 0, 0). */
ALEXNET_API alexnet_status alexnet_dataset_pca(const alexnet_dataset *dataset, float out_eigenvalues[3],
                                               float out_eigenvectors[9]);

/* ---- augmentation: how the training loop turns a dataset image into a network input ---- */
/* Per image, in this order: zero-pad `padding` pixels on every side; crop the network's input size at a
 * random position (random_crop) or at the centre; mirror left-right with probability 1/2 (mirror);
 * scale to [0, 1]; add the paper's PCA lighting noise sum_i alpha_i * eigenvalue_i * eigenvector_i with
 * alpha_i ~ N(0, pca_std) drawn per image (for one channel: alpha_0 * eigenvalue_0); normalise
 * (x - mean) / std per channel. Evaluation uses the centre crop of the padded image (or the ten crops:
 * four corners and centre, and their mirrors) with no noise. All randomness comes from the trainer's
 * seeded generator, which checkpoints save. */
typedef struct alexnet_augment_options {
    size_t struct_size;
    uint32_t padding;           /* 0 */
    uint32_t random_crop;       /* 1 */
    uint32_t mirror;            /* 1 */
    float pca_std;              /* 0.1 (the paper); 0 = no lighting noise */
    float pca_eigenvalues[3];   /* ImageNet's RGB components by default (for values in [0, 1]) */
    float pca_eigenvectors[9];  /* row-major, eigenvector i in [3i, 3i + 3) */
    float mean[3], std[3];      /* ImageNet's, as alexnet_image_options */
} alexnet_augment_options;
ALEXNET_API void alexnet_augment_options_init(alexnet_augment_options *options);

/* ---- trainer options ---- */
typedef enum alexnet_lr_schedule {
    ALEXNET_LR_CONSTANT = 0, /* the learning rate never changes */
    ALEXNET_LR_STEP = 1,     /* multiplied by lr_gamma every lr_step_epochs epochs */
    ALEXNET_LR_PLATEAU = 2   /* multiplied by lr_gamma (0.1: the paper's "divide by 10") when the validation
                              * loss (the training loss without a validation set) has not improved for
                              * lr_patience epochs */
} alexnet_lr_schedule;

/* A learning-rate multiplier for one layer's weights and biases (biases get bias_lr_multiplier too). */
typedef struct alexnet_layer_multiplier {
    const char *layer; /* a conv or FC layer's name: "conv1" ... "fc8" */
    float lr_multiplier;
} alexnet_layer_multiplier;

/* What the progress callback sees: one event after every step and one at the end of every epoch. */
typedef struct alexnet_train_progress {
    size_t struct_size;
    int32_t end_of_epoch;         /* 0: a step event; 1: an epoch event */
    uint32_t epoch;               /* 0-based epoch the event belongs to */
    uint64_t step;                /* steps completed since the trainer was created (resumes included) */
    size_t images_done;           /* images of this epoch done so far */
    size_t images_per_epoch;
    float loss, accuracy;         /* step: the batch's mean loss and top-1 accuracy; epoch: the epoch's */
    float learning_rate;          /* step: the rate it used; epoch: the rate for the next epoch */
    float validation_loss;        /* epoch events with a validation set, else NaN */
    float validation_top1_error, validation_top5_error;
} alexnet_train_progress;
/* Return 0 to go on, nonzero to stop: alexnet_trainer_train then returns ALEXNET_OK at once, with the
 * trainer in a consistent state (a checkpoint taken then resumes exactly there). */
typedef int (*alexnet_progress_fn)(void *user, const alexnet_train_progress *progress);

typedef struct alexnet_trainer_options {
    size_t struct_size;
    /* Execution, as in alexnet_context_options. "auto" (without ALEXNET_BACKEND set) and "cpu" pick the
     * best available backend that implements the training ops (cpu-simd and reference do); a backend named
     * here or in ALEXNET_BACKEND that cannot train fails creation with ALEXNET_E_UNSUPPORTED. */
    const char *backend;          /* "auto" */
    uint32_t num_threads;         /* 1 */
    alexnet_parallel_for_fn parallel_for;
    void *parallel_for_host;
    alexnet_allocator allocator;  /* all-NULL: the model's */
    uint32_t batch;               /* 128: images per step (the paper's); steps may use fewer */
    /* SGD, PyTorch's formulation: v = momentum * v + (grad + weight_decay * w); w -= lr * v */
    float learning_rate;          /* 0.01 */
    float momentum;               /* 0.9 */
    float weight_decay;           /* 5e-4 */
    float dropout_rate;           /* < 0 (the default, -1): the model configuration's rate; 0 = off */
    uint64_t seed;                /* dropout masks, data order, augmentation, a new last layer; 0 is a seed */
    alexnet_lr_schedule lr_schedule; /* CONSTANT */
    float lr_gamma;               /* 0.1 */
    uint32_t lr_step_epochs;      /* STEP: 30 */
    uint32_t lr_patience;         /* PLATEAU: 2 */
    float bias_lr_multiplier;     /* 1 (PyTorch and the paper; Caffe's AlexNet recipe uses 2) */
    float bias_weight_decay_multiplier; /* 1 (PyTorch; Caffe's recipe uses 0) */
    const alexnet_layer_multiplier *layer_multipliers; /* layer_multiplier_count entries, or NULL */
    size_t layer_multiplier_count;
    /* NULL-terminated conv/FC layer names whose parameters stay fixed: no gradient is computed for them,
     * and nothing at all below the lowest trainable layer. */
    const char *const *frozen_layers;
    /* Nonzero and different from the model's: fine-tune to this many classes; the last FC layer is
     * re-initialised from seed (the variant's scheme: N(0, 0.01) and bias 0, or PyTorch's uniform for
     * torchvision) and every other tensor is copied. */
    uint32_t num_classes;
    const alexnet_augment_options *augment; /* NULL: alexnet_augment_options_init's defaults */
    alexnet_progress_fn progress;           /* NULL: no callback */
    void *progress_user;
} alexnet_trainer_options;
ALEXNET_API void alexnet_trainer_options_init(alexnet_trainer_options *options);

/* ---- trainer calls ---- */
/* Copies the model's weights (the model may be destroyed afterwards). */
ALEXNET_API alexnet_status alexnet_trainer_create(const alexnet_model *model, const alexnet_trainer_options *options,
                                                  alexnet_trainer **out_trainer);
ALEXNET_API void alexnet_trainer_destroy(alexnet_trainer *trainer); /* NULL is a no-op */

/* One SGD step (forward, backward, update) on batch inputs already normalised (NCHW at the configured
 * input size) with labels < the class count; 1 <= batch <= options.batch. out_loss (the batch's mean
 * cross-entropy) and out_accuracy (its top-1 accuracy) may be NULL. A non-finite loss fails with
 * ALEXNET_E_STATE before any weight changes. */
ALEXNET_API alexnet_status alexnet_trainer_step(alexnet_trainer *trainer, const float *input, const uint32_t *labels,
                                                size_t batch, float *out_loss, float *out_accuracy);

typedef struct alexnet_evaluation {
    size_t struct_size;
    size_t count;        /* images evaluated */
    double loss;         /* mean cross-entropy of the (crop-averaged) softmax */
    double top1_error;   /* fractions in [0, 1] */
    double top5_error;   /* top-min(5, classes) */
} alexnet_evaluation;
/* Evaluate on every image of dataset (dropout off, no noise): the centre crop, or with ten_crop nonzero the
 * paper's ten crops with their softmax outputs averaged. Does not change the trainer's state. */
ALEXNET_API alexnet_status alexnet_trainer_evaluate(alexnet_trainer *trainer, const alexnet_dataset *dataset,
                                                    uint32_t ten_crop, alexnet_evaluation *out_evaluation);
/* Train until `epochs` epochs in all have completed (counting from creation, resumes included; a call with
 * a count already reached does nothing). Each epoch visits the dataset in a seeded random order, in
 * batches, augmenting every image; validation (may be NULL) is evaluated after each epoch for the progress
 * event and the PLATEAU schedule. A resumed trainer continues mid-epoch where its checkpoint was taken, so
 * pass the same training dataset. */
ALEXNET_API alexnet_status alexnet_trainer_train(alexnet_trainer *trainer, const alexnet_dataset *train,
                                                 const alexnet_dataset *validation, uint32_t epochs);

typedef struct alexnet_trainer_state {
    size_t struct_size;
    uint64_t step;          /* steps completed */
    uint32_t epoch;         /* epochs completed */
    size_t epoch_position;  /* images of the current epoch done */
    float learning_rate;    /* the rate the next step uses */
} alexnet_trainer_state;
ALEXNET_API alexnet_status alexnet_trainer_get_state(const alexnet_trainer *trainer, alexnet_trainer_state *out_state);

/* A checkpoint is a safetensors file: the weights (under the model's tensor names), the momentum buffers
 * ("momentum." + name, trainable tensors only) and, as metadata, the counters, the schedule's state and the
 * data-order/augmentation generator and the seed. Written atomically (temporary file + rename). Loading
 * checks it against the trainer (tensor names and shapes, class count, frozen layers) before anything
 * changes, then restores all of it, the seed included; a run resumed from the checkpoint taken after step k
 * continues bit for bit as the run that wrote it did (same options, same datasets, same backend). */
ALEXNET_API alexnet_status alexnet_trainer_save_checkpoint(const alexnet_trainer *trainer, const char *path);
ALEXNET_API alexnet_status alexnet_trainer_load_checkpoint(alexnet_trainer *trainer, const char *path);
/* A new, independent model with the trainer's current weights (allocated with the trainer's allocator). */
ALEXNET_API alexnet_status alexnet_trainer_export_model(const alexnet_trainer *trainer, alexnet_model **out_model);

#ifdef __cplusplus
}
#endif
#endif /* ALEXNET_ALEXNET_H */
